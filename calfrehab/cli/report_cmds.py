"""Commands that write HTML for people: report (the clinician's course
report) and handout (the patient's next exercises)."""

from __future__ import annotations

from pathlib import Path

import click

from calfrehab.cli.options import domain_errors, rules_option
from calfrehab.engine import api

OUT = click.Path(dir_okay=False, path_type=Path)


@click.command()
@click.argument("case", type=str)
@click.option("-o", "--output", "out", type=OUT, required=True,
              help="HTML file to write (replaced if it exists).")
@click.option("--audit", "audit_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Audit trail whose decisions and overrides for the case "
              "are shown (read only; nothing is recorded).")
@click.option("--weeks", type=click.IntRange(0, 104), default=12, show_default=True,
              help="Weeks of projected course (the simulator's ideal patient); 0 for none.")
@rules_option
@domain_errors(exit_code=1)
def report(case: str, out: Path, audit_path: Path | None, weeks: int,
           rules_dir: Path | None) -> None:
    """Write a course report of a case as one self-contained HTML file.

    Patient and condition; each track session by session (rung, load,
    sets × reps); pain during and next morning against the pain model's
    bands; heel-raise test, limb symmetry and VISA-A; the trail's decisions
    and overrides (with --audit); the current proposal with reasons and
    sources; the course projected over --weeks by the simulator. Charts are
    inline with a table of the same numbers beside each; the file opens
    from disk, makes no network request and prints on A4.

    Example:

        calfrehab report examples/plantar-next-morning-jump-flare.json -o report.html
    """
    wrote = api.write_report(case, out, audit=audit_path, rules_dir=rules_dir, weeks=weeks)
    click.echo(f"{wrote.path}: {wrote.summary}")


@click.command()
@click.argument("case", type=str)
@click.option("-o", "--output", "out", type=OUT, required=True,
              help="HTML file to write (replaced if it exists).")
@rules_option
@domain_errors(exit_code=1)
def handout(case: str, out: Path, rules_dir: Path | None) -> None:
    """Write the patient's handout: the next exercises in plain words.

    Dose, speed, tips and how often for each exercise; how much pain is all
    right (the pain-monitoring model in lay terms); when to stop and call
    the clinic. No rule ids and no clinical terms. One HTML file, no
    script, prints on A4.

    Example:

        calfrehab handout examples/runner-stuck-on-two-leg.json -o handout.html
    """
    wrote = api.write_handout(case, out, rules_dir=rules_dir)
    click.echo(f"{wrote.path}: {wrote.summary}")
