"""Commands that write case files: new, log, assess."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from calfrehab.cli.options import confirm_unusual_option, domain_errors, rules_option
from calfrehab.cli.prompts import Asker, interactive_option, question_options
from calfrehab.cli.stdout import say
from calfrehab.engine import api


def _report(written: api.Written) -> None:
    for change in written.changes:
        say(f"{written.path}: {change}")


@click.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@question_options(api.NEW_QUESTIONS)
@click.option("--force", is_flag=True,
              help="Replace PATH if it exists (only the same case: another case_id never).")
@confirm_unusual_option
@rules_option
@interactive_option
@domain_errors(exit_code=1)
def new(path: Path, force: bool, confirm_unusual: bool, rules_dir: Path | None,
        interactive: bool | None, **answers: Any) -> None:
    """Start a case file: patient, condition, goal, red flags, programme.

    At a terminal each answer is asked for, with its choices and the
    rules' starting dose as defaults, and checked as it is typed. Every
    answer can also be given as a flag, for scripts (--no-input then makes
    a missing answer an error). The file is written only if the whole case
    is valid.

    Example:

        calfrehab new ana.json --case-id ANA-01 --age-years 41 --kind
        achilles_midportion --side left --no-input
    """
    written = api.new_case(path, Asker(answers, interactive), rules_dir=rules_dir,
                           overwrite=force, confirm_unusual=confirm_unusual)
    _report(written)
    say(f"Next: log a session with  calfrehab log {path}")


@click.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@question_options([*api.LOG_QUESTIONS, *api.MORNING_QUESTIONS])
@click.option("--morning", is_flag=True,
              help="Add next-morning pain and stiffness to a session instead: --date's, "
                   "by default the most recent before today that has none.")
@click.option("--replace", is_flag=True,
              help="With --morning: change next-morning values already recorded.")
@click.option("--second-session", is_flag=True,
              help="A further session on a day that has one (twice-daily programmes); "
                   "without it the same session again is refused.")
@confirm_unusual_option
@rules_option
@interactive_option
@domain_errors(exit_code=1)
def log(path: Path, morning: bool, replace: bool, second_session: bool,
        confirm_unusual: bool, rules_dir: Path | None, interactive: bool | None,
        **answers: Any) -> None:
    """Add a training session to a case file.

    Exercise, load and sets come from the programme, so the usual answers
    are the reps done per set (Enter takes the full prescribed dose) and
    the worst pain during each exercise. The next day, --morning adds the
    next-morning pain and stiffness to the last session (log also offers
    to when it is missing). A review date before the session moves to it.
    The file keeps its own form: only what is added is written, in its
    indentation; the rest stays as you wrote it.

    Refused, writing nothing: a date after today (the clinic's time zone,
    calfrehab.toml); the same session again on its date (unless
    --second-session); a value for a track that has not started; values a
    calf cannot produce (unless --confirm-unusual: the message names the
    plausible range); next-morning values over ones recorded (unless
    --replace).

    Example:

        calfrehab log ana.json --date 2026-11-21 --straight-knee-done 15,15,12
        --straight-knee-pain 2 --no-input
    """
    asker = Asker(answers, interactive, flag_only=api.LOG_FLAG_ONLY)
    if morning:
        if second_session:
            raise click.UsageError("--second-session is for a session, not --morning")
        written = api.log_morning(path, asker, replace=replace)
    else:
        if replace:
            raise click.UsageError("--replace is for --morning values")
        written = api.log_session(path, asker, rules_dir=rules_dir,
                                  second_session=second_session,
                                  confirm_unusual=confirm_unusual,
                                  answered=frozenset(asker.given))
    _report(written)


@click.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@question_options(api.ASSESS_QUESTIONS)
@confirm_unusual_option
@rules_option
@interactive_option
@domain_errors(exit_code=1)
def assess(path: Path, confirm_unusual: bool, rules_dir: Path | None,
           interactive: bool | None, **answers: Any) -> None:
    """Add a clinic assessment to a case file.

    Asks for the single-leg heel-raise test (both sides), pain at rest,
    VISA-A (Achilles conditions) and hop pain; leave blank what was not
    measured. A review date before the assessment moves to it. A date after
    today, the same assessment again, and values past the plausible ranges
    (unless --confirm-unusual) are refused.

    Example:

        calfrehab assess ana.json --date 2026-11-24 --heel-raise-involved 18
        --heel-raise-uninvolved 25 --visa-a 70 --no-input
    """
    _report(api.add_assessment(path, Asker(answers, interactive), rules_dir=rules_dir,
                               confirm_unusual=confirm_unusual))
