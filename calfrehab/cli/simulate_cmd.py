"""`calfrehab simulate`: the projected course of a scripted patient."""

from __future__ import annotations

import json
from pathlib import Path

import click

from calfrehab.cli.options import domain_errors, json_option, rules_option
from calfrehab.cli.render import TRACK_TITLES
from calfrehab.engine import api

SCRIPT_HELP = ("How the patient responds: ideal (default), or one bad course week K: "
               "flare:K, missed:K, painful:K.")

REVIEW_DAY_HELP = ("When the weekly review falls: first (the first day of the next training "
                   "week; training starts on the intake's day), last (the last day of the "
                   "week), or that weekday's name (the intake's weekday, or the one before it).")


def _dose(sets: int | None, reps: int | None) -> str:
    return "" if sets is None or reps is None else f"{sets} × {reps}"


def _render(course: api.Course) -> None:
    injury = course.injury_anchor is not None
    when = ("the last day of each training week" if course.review_day == "last"
            else "the first day of the next training week")
    click.echo(f"Course of {course.case_id} · script {course.script} · {course.weeks} weekly "
               f"reviews from {course.start_date.isoformat()}, on {when}")
    click.echo("A projection under the current rules for a patient who responds as")
    click.echo("scripted; the clinician decides.")
    width = max([len(t.exercise or "-") for row in course.rows for t in row.tracks.values()]
                + [len("exercise")])
    for track, title in TRACK_TITLES.items():
        click.echo("")
        click.echo(title)
        inj = " inj" if injury else ""
        click.echo(f"  wk{inj}  {'exercise':{width}}  {'load':>7}  {'dose':>6}  decision")
        for row in course.rows:
            t = row.tracks[track]
            week = f"{row.injury_week:>4}" if injury and row.injury_week is not None else ""
            load = "" if t.load_kg is None else f"{t.load_kg:g} kg"
            decision = t.decision
            if t.exercise is not None and row.week > 0 and t.sessions == 0:
                decision += " (not done)"
            click.echo(f"{row.week:>4}{week}  {t.exercise or '-':{width}}  {load:>7}  "
                       f"{_dose(t.sets, t.reps):>6}  {decision}".rstrip())
    click.echo("")
    click.echo("Milestones (the week each was first done)")
    if not course.milestones:
        click.echo("  none reached")
    for m in course.milestones:
        inj_week = f" (week {m.injury_week} from injury)" if m.injury_week is not None else ""
        click.echo(f"  week {m.week:>3}{inj_week}  {m.key}")
    if course.referred_week is not None:
        click.echo(f"  referred at the review ending week {course.referred_week}")


@click.command()
@click.argument("case", metavar="CASE", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--weeks", type=click.IntRange(1, api.MAX_COURSE_WEEKS), default=12,
              show_default=True, help="Weekly reviews to replay after the intake review.")
@click.option("--script", "script", default="ideal", show_default=True, help=SCRIPT_HELP)
@click.option("--review-day", "review_day", default="first", show_default=True,
              metavar="DAY", help=REVIEW_DAY_HELP)
@rules_option
@json_option
@domain_errors(exit_code=1)
def simulate(case: str, weeks: int, script: str, review_day: str, rules_dir: Path | None,
             as_json: bool) -> None:
    """Project the course of a patient who responds as scripted.

    CASE is the intake: it is decided as it stands, then each review's next
    prescription is what the patient does the following week (sessions per
    each rung's frequency), answered as the script says, and reviewed weekly
    under the current rules. Prints a week-by-week table per track (exercise,
    load, sets × reps, decision) and the week each milestone is first done.
    Deterministic; nothing is recorded in the audit trail.

    Example:

        calfrehab simulate examples/runner-stuck-on-two-leg.json --weeks 12 --script flare:3

        calfrehab simulate examples/plantar-single-leg-to-weighted.json --review-day last
    """
    course = api.simulate(case, weeks=weeks, script=script, rules_dir=rules_dir,
                          review_day=review_day)
    if as_json:
        click.echo(json.dumps(course.model_dump(mode="json"), indent=2, ensure_ascii=False))
        return
    _render(course)
