"""Commands that write HTML for people: report (the clinician's course
report) and handout (the patient's next exercises)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from calfrehab.cli.options import (
    audit_option,
    domain_errors,
    output_option,
    person_text,
    rules_option,
)
from calfrehab.cli.stdout import say
from calfrehab.engine import api

DATE = click.DateTime(formats=["%Y-%m-%d"])


def _given_trail(audit_path: Path | None) -> Path | None:
    """The trail to read. CALFREHAB_AUDIT, or calfrehab.toml's [trail] when
    neither it nor --audit is given, names where decisions will be recorded;
    before the first there is nothing to show, which is no error. A trail
    named with --audit must exist."""
    ctx = click.get_current_context()
    if (audit_path is not None and not audit_path.exists()
            and ctx.get_parameter_source("audit_path") != ParameterSource.COMMANDLINE):
        return None
    return audit_path


def next_review_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--next-review", type=DATE, default=None, metavar="YYYY-MM-DD",
                        help="Date of the next review (default: the review date plus the "
                             "clinic configuration's review interval, 7 days unless set).")(fn)


@click.command()
@click.argument("case", type=str)
@output_option("-o", "--output", required=True, help="HTML file to write.")
@audit_option(help="Audit trail whose decisions and overrides for the case "
                   "are shown (read only; nothing is recorded).")
@click.option("--clinician", default=None, callback=person_text,
              help="Who prepared the report (default: the clinician of the trail's latest "
                   "decision, else the clinic configuration's).")
@next_review_option
@click.option("--weeks", type=click.IntRange(0, 104), default=12, show_default=True,
              help="Weeks of projected course (the simulator's ideal patient); 0 for none.")
@rules_option
@domain_errors(exit_code=1)
def report(case: str, out: Path, audit_path: Path | None, clinician: str | None,
           next_review: datetime | None, weeks: int, rules_dir: Path | None) -> None:
    """Write a course report of a case as one self-contained HTML file.

    Patient and condition; each track's decision with its reasons and what
    it still lacks; every session (rung, load, reps, pain during, next
    morning, stiffness) with the pain model's limits; heel-raise test, limb
    symmetry and VISA-A; the trail's decisions with their reasons and any
    override (with --audit); the course projected over --weeks by the
    simulator; sources. Charts are SVG drawn into the file, beside one table
    per data set: no script, no network request, and it prints on A4.

    Example:

        calfrehab report examples/plantar-next-morning-jump-flare.json -o report.html
    """
    wrote = api.write_report(case, out, audit=_given_trail(audit_path), rules_dir=rules_dir,
                             weeks=weeks, author=clinician,
                             next_review=next_review.date() if next_review else None)
    say(f"{wrote.path}: {wrote.summary}")


@click.command()
@click.argument("case", type=str)
@output_option("-o", "--output", required=True, help="HTML file to write.")
@audit_option(help="Audit trail: an override of the case's latest decision is noted, with "
                   "its reason (read only).")
@click.option("--clinic-name", default=None, callback=person_text,
              help="The clinic's name printed on the handout (default: the clinic "
                   "configuration's).")
@click.option("--clinic-phone", default=None, callback=person_text,
              help="The phone number the patient calls (default: the clinic "
                   "configuration's).")
@next_review_option
@rules_option
@domain_errors(exit_code=1)
def handout(case: str, out: Path, audit_path: Path | None, clinic_name: str | None,
            clinic_phone: str | None, next_review: datetime | None,
            rules_dir: Path | None) -> None:
    """Write the patient's handout: the next exercises in plain words.

    When to stop and call the clinic first; then dose, speed, tips and how
    often for each exercise; how much pain is all right (the rules' limits
    for the patient's condition, in lay terms). The leg in words, the date
    printed, the next review and the clinic's name and phone. No rule ids
    and no clinical terms. One HTML file, no script, one A4 page.

    Example:

        calfrehab handout examples/runner-stuck-on-two-leg.json -o handout.html
    """
    wrote = api.write_handout(case, out, rules_dir=rules_dir, audit=_given_trail(audit_path),
                              clinic_name=clinic_name,
                              clinic_phone=clinic_phone,
                              next_review=next_review.date() if next_review else None)
    say(f"{wrote.path}: {wrote.summary}")
