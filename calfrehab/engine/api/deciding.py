"""Deciding: for a clinic's own program, and every command that decides.

:func:`prepare` a rules directory once, then :func:`decide_path` (or
:func:`decide_document`, :func:`decide`) per case; :func:`explanation` gives
HOW / WHY-NOT as data. Case files are checked with :func:`validate_path`
and :func:`validate_document`; rules with :func:`compile_rules`,
:func:`check_rules` and their case tables (:func:`run_tables`); courses
are projected with :func:`simulate` and :func:`simulate_document`.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from calfrehab.engine.casefile.model import Case, case_json_schema
from calfrehab.engine.casefile.validation import parse_json, read_case_file, validate_document
from calfrehab.engine.clinic import clinic_today
from calfrehab.engine.course.replay import Course
from calfrehab.engine.course.run import MAX_COURSE_WEEKS, simulate, simulate_document
from calfrehab.engine.errors import FutureReviewDate as FutureReviewDate
from calfrehab.engine.errors import RuleError
from calfrehab.engine.explanation.document import (
    ENGINE_VERSION,
    DecisionDocument,
    decision_json_schema,
)
from calfrehab.engine.inference.driver import Reasoner
from calfrehab.engine.knowledge.loader import load_ladder
from calfrehab.engine.pipeline import (
    Decided,
    compile_rules,
    decide,
    decide_document,
    decide_path,
    explanation,
    prepare,
)
from calfrehab.engine.ruletest.casetable import run_tables
from calfrehab.engine.textsafe import for_terminal
from calfrehab.engine.vocabulary import (
    DECISION_KINDS,
    TRACKS,
    DecisionKind,
    Outcome,
    TrackName,
)

if TYPE_CHECKING:
    from calfrehab.engine.knowledge.compiler import CompiledRuleBase
    from calfrehab.engine.ruletest.registration import RegistrationReport

__all__ = [
    "DECISION_KINDS",
    "ENGINE_VERSION",
    "MAX_COURSE_WEEKS",
    "TRACKS",
    "Case",
    "Course",
    "Decided",
    "DecisionDocument",
    "DecisionKind",
    "Outcome",
    "Reasoner",
    "TrackName",
    "case_json_schema",
    "check_rules",
    "compile_rules",
    "decide",
    "decide_case_file",
    "decide_document",
    "decide_path",
    "decision_json",
    "decision_json_schema",
    "explanation",
    "explanation_json",
    "future_review",
    "load_ladder",
    "parse_json",
    "prepare",
    "run_tables",
    "simulate",
    "simulate_document",
    "validate_document",
    "validate_path",
]


def check_rules(rules_dir: Path | None = None) -> tuple[CompiledRuleBase, RegistrationReport]:
    """What ``calfrehab rules check`` does: compile a rules directory (raises
    :class:`RuleError` listing every problem, engine limits included), then
    refuse a safety rule (red flag, referral, gate) that no case within the
    case format's ranges can make fire, then register it with durable-rules
    and decide a probe case in a child process
    under the time limit of ``limits.toml`` (``CALFREHAB_RULES_CHECK_TIMEOUT``),
    reporting what the engine refuses and naming the rule."""
    from calfrehab.engine.knowledge.reachable import unreachable_safety_rules
    from calfrehab.engine.limits import rules_check_timeout_s
    from calfrehab.engine.ruletest.registration import check_registration

    compiled = compile_rules(rules_dir)
    # A red flag, referral or gate no valid case can trigger passes every
    # other check; the case format's own ranges show it (issue 27).
    unreachable = unreachable_safety_rules(compiled)
    if unreachable:
        raise RuleError(unreachable)
    directory = Path(rules_dir) if rules_dir is not None else compiled.base.directory
    return compiled, check_registration(directory, timeout_s=rules_check_timeout_s())


def validate_path(path: str | Path) -> Case:
    """Validate a case file; ``-`` reads standard input. Raises
    :class:`CaseValidationError` with every error of the file."""
    case, _ = read_case_file(path)
    return case


def decision_json(decided: Decided) -> str:
    """The decision document as ``next --json`` prints it (and ``POST
    /v1/decide`` returns it): the same bytes from both."""
    return json.dumps(decided.decision.model_dump(mode="json"), indent=2,
                      ensure_ascii=False) + "\n"


def explanation_json(decided: Decided) -> str:
    """The explanation as ``explain --json`` prints it (and ``POST
    /v1/explain`` returns it)."""
    return json.dumps(explanation(decided), indent=2, ensure_ascii=False) + "\n"


def decide_case_file(path: str | Path, reasoner: Reasoner, *, review_date: date | None = None,
                     today: date | None = None) -> Decided:
    """Decide a case file (``-``: standard input) as ``next`` does. Without
    ``review_date`` the file's own review date must not be after the
    clinic's today; with it, the case is decided for that day, stated
    explicitly (a projection, as ``simulate`` and replays do)."""
    case, document = read_case_file(path)
    if review_date is not None:
        # A copy: the key keeps its place, so the bytes differ only there.
        moved = {**document, "review_date": review_date.isoformat()}
        return decide_document(moved, reasoner, str(path))
    near = None if str(path) == "-" else Path(path)
    reason = future_review(case, today=today, near=near)
    if reason is not None:
        raise FutureReviewDate(f"{for_terminal(str(path))}: {reason}")
    return decide(case, document, reasoner)


def future_review(case: Case, *, today: date | None = None,
                  near: Path | None = None) -> str | None:
    """Why ``case`` may not be decided as it stands: its review date is
    after the clinic's today (time gates count to it), or None."""
    day = today if today is not None else clinic_today(near=near)
    if case.review_date <= day:
        return None
    return (f"review_date {case.review_date.isoformat()} is after today ({day.isoformat()} in "
            "the clinic's time zone); time gates count to the review date, so it is never "
            "taken on trust. Correct the date, or give --review-date "
            f"{case.review_date.isoformat()} to decide for that day explicitly")
