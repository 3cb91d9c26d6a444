"""`calfrehab simulate`: the projected course of a scripted patient."""

from __future__ import annotations

import json
from pathlib import Path

import click

from calfrehab.cli.options import domain_errors, json_option, rules_option
from calfrehab.cli.stdout import say
from calfrehab.engine import api

SCRIPT_HELP = ("How the patient responds: ideal (default), or one bad course week K: "
               "flare:K, missed:K, painful:K.")

REVIEW_DAY_HELP = ("When the weekly review falls: first (the first day of the next training "
                   "week; training starts on the intake's day), last (the last day of the "
                   "week), or that weekday's name (the intake's weekday, or the one before it).")


def _render(course: api.Course, rules_dir: Path | None) -> None:
    """The course in the clinician's words (the wording home in api.text):
    exercise names, doses with their units and load, decision words, and
    milestones said as a sentence; ids stay in --json, for machines."""
    ladder = api.load_ladder(rules_dir)
    injury = course.injury_anchor is not None
    when = ("the last day of each training week" if course.review_day == "last"
            else "the first day of the next training week")
    say(f"Course of {api.for_terminal(course.case_id)} · script {course.script} · "
               f"{course.weeks} weekly reviews from {course.start_date.isoformat()}, on {when}")
    say("A projection under the current rules for a patient who responds as")
    say("scripted, its load capped at the rule base's projection ceiling; the")
    say("clinician decides.")

    def name(exercise: str | None) -> str:
        return "-" if exercise is None else api.for_terminal(api.exercise_name(ladder, exercise))

    def dose(exercise: str | None, sets: int | None, reps: int | None,
             load_kg: float | None) -> str:
        if exercise is None or sets is None or reps is None:
            return ""
        return api.dose_text(sets, reps, api.unit_of(ladder, exercise), load_kg)

    rows = [t for row in course.rows for t in row.tracks.values()]
    width = max([len(name(t.exercise)) for t in rows] + [len("exercise")])
    doses = [dose(t.exercise, t.sets, t.reps, t.load_kg) for t in rows]
    dose_width = max([len(d) for d in doses] + [len("dose")])
    for track in api.TRACK_TITLES:
        say("")
        say(api.track_title(track))
        inj = " inj" if injury else ""
        say(f"  wk{inj}  {'exercise':{width}}  {'dose':{dose_width}}  decision")
        for row in course.rows:
            t = row.tracks[track]
            week = f"{row.injury_week:>4}" if injury and row.injury_week is not None else ""
            decision = api.decision_word(t.decision)
            if t.exercise is not None and row.week > 0 and t.sessions == 0:
                decision += " (not done)"
            said = dose(t.exercise, t.sets, t.reps, t.load_kg)
            say(f"{row.week:>4}{week}  {name(t.exercise):{width}}  "
                       f"{said:{dose_width}}  {decision}".rstrip())
    say("")
    say("Milestones (the week each was first done)")
    if not course.milestones:
        say("  none reached")
    for m in course.milestones:
        inj_week = f" (week {m.injury_week} from injury)" if m.injury_week is not None else ""
        say(f"  week {m.week:>3}{inj_week}  "
                   f"{api.for_terminal(api.milestone_text(m.key, ladder))}")
    if course.referred_week is not None:
        say(f"  referred at the review ending week {course.referred_week}")


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
        say(json.dumps(course.model_dump(mode="json"), indent=2, ensure_ascii=False))
        return
    _render(course, rules_dir)
