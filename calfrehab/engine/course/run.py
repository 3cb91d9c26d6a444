"""A course under a rules directory: the intake validated, every weekly
review decided the one way every decision is (:mod:`calfrehab.engine.pipeline`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from calfrehab.engine.casefile.validation import read_case_file, validate_document
from calfrehab.engine.course.ceiling import LoadCeiling
from calfrehab.engine.course.replay import Course, replay
from calfrehab.engine.course.reviewday import resolve_review_day
from calfrehab.engine.course.script import Script, ScriptError, parse_script
from calfrehab.engine.inference.driver import Reasoner
from calfrehab.engine.pipeline import decide_document, prepare

MAX_COURSE_WEEKS: Final = 104


def simulate_document(
    document: Any, reasoner: Reasoner, *, weeks: int, script: Script | str = "ideal",
    source: str = "<case>", review_day: str = "first",
) -> Course:
    """Replay ``weeks`` weekly reviews of a scripted patient from a case
    document (the intake), each review's ``next`` done the following week.
    ``review_day``: ``first`` (the review falls on the first day of the
    next training week), ``last`` (on the last day of the week), or a
    weekday name, which must be one of those two for this intake
    (:func:`calfrehab.engine.course.reviewday.resolve_review_day`)."""
    if not 1 <= weeks <= MAX_COURSE_WEEKS:
        raise ScriptError(f"weeks {weeks}: expected 1 to {MAX_COURSE_WEEKS}")
    chosen = parse_script(script) if isinstance(script, str) else script
    case = validate_document(document, source)
    when = resolve_review_day(review_day, case.review_date)
    base = reasoner.compiled.base
    return replay(document, weeks=weeks, script=chosen, ladder=base.ladder,
                  decide=lambda doc: decide_document(doc, reasoner, source), review_day=when,
                  ceiling=LoadCeiling.from_params(base.manifest.params()))


def simulate(
    path: str | Path, *, weeks: int, script: str = "ideal", rules_dir: Path | None = None,
    review_day: str = "first",
) -> Course:
    """The course of a case file (``-`` reads standard input) under a rules
    directory: what ``calfrehab simulate`` prints."""
    reasoner = prepare(rules_dir)
    _, doc = read_case_file(path)
    source = "<stdin>" if str(path) == "-" else str(path)
    return simulate_document(doc, reasoner, weeks=weeks, script=script, source=source,
                             review_day=review_day)
