"""Deciding: for a clinic's own program, and every command that decides.

:func:`prepare` a rules directory once, then :func:`decide_path` (or
:func:`decide_document`, :func:`decide`) per case, or
:func:`decide_and_record` to record each decision in the audit trail before
it is shown (what the command line, the service and the app do);
:func:`explanation` gives HOW / WHY-NOT as data. Case files are checked with :func:`validate_path`
and :func:`validate_document`; rules with :func:`compile_rules`,
:func:`check_rules` and their case tables (:func:`run_tables`); courses
are projected with :func:`simulate` and :func:`simulate_document`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from calfrehab.engine.casefile.model import Case, case_json_schema
from calfrehab.engine.casefile.validation import parse_json, read_case_file, validate_document
from calfrehab.engine.clinic import clinic_today
from calfrehab.engine.errors import ArgumentError, RuleError
from calfrehab.engine.errors import FutureReviewDate as FutureReviewDate
from calfrehab.engine.explanation.document import (
    ENGINE_VERSION,
    DecisionDocument,
    decision_json_schema,
)
from calfrehab.engine.inference.driver import Reasoner
from calfrehab.engine.pipeline import (
    Decided,
    compile_rules,
    decide,
    decide_document,
    decide_path,
    explanation,
    prepare,
)
from calfrehab.engine.textsafe import for_terminal
from calfrehab.engine.vocabulary import (
    DECISION_KINDS,
    TRACKS,
    DecisionKind,
    Outcome,
    TrackName,
)

if TYPE_CHECKING:
    from calfrehab.engine.api.sources import FromBundleFile, FromDocument, FromEitherFile
    from calfrehab.engine.course.replay import Course
    from calfrehab.engine.course.run import MAX_COURSE_WEEKS, simulate, simulate_document
    from calfrehab.engine.knowledge.compiled import CompiledRuleBase
    from calfrehab.engine.knowledge.loader import load_ladder
    from calfrehab.engine.ruletest.casetable import run_tables
    from calfrehab.engine.ruletest.registration import RegistrationReport
else:
    from calfrehab.engine.api._lazy import lazy_names

    # Courses, case tables, the sources other than a case file and the rule
    # file loader load when first used: `next` of a case file needs none of
    # them (its compiled rule base comes from the cache).
    __getattr__, __dir__ = lazy_names(__name__, {
        "calfrehab.engine.knowledge.loader": ("load_ladder",),
        "calfrehab.engine.api.sources": ("FromBundleFile", "FromDocument", "FromEitherFile"),
        "calfrehab.engine.course.replay": ("Course",),
        "calfrehab.engine.course.run": ("MAX_COURSE_WEEKS", "simulate", "simulate_document"),
        "calfrehab.engine.ruletest.casetable": ("run_tables",),
    })

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
    "FromBundleFile",
    "FromCaseFile",
    "FromDocument",
    "FromEitherFile",
    "Outcome",
    "Reasoner",
    "TrackName",
    "case_json_schema",
    "check_rules",
    "compile_rules",
    "decide",
    "decide_and_record",
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


# What decide_and_record decides from: one class per kind of source, so
# what only one kind takes (a review date, a name for messages) is said
# with it, and a type checker sees a wrong source.


class FromCaseFile(NamedTuple):
    """A case file (``-``: standard input), read as ``next`` reads one: a
    review date after the clinic's today is refused unless ``review_date``
    states the day (a projection, as ``simulate`` and replays do).

    A NamedTuple, not a frozen dataclass as the other sources are
    (api/sources.py): as immutable and as matched, but every ``next`` of a
    case file defines it, and a dataclass's generated methods are compiled
    when the class is defined, about 0.4 ms of CPU (issue 28 item 4)."""

    path: str | Path
    review_date: date | None = None


def decide_and_record(source: FromCaseFile | FromBundleFile | FromEitherFile | FromDocument
                      | Decided, reasoner: Reasoner, *, audit_path: Path | None,
                      clinician: str | None, record: bool = True,
                      requester: Mapping[str, Any] | None = None) -> Decided:
    """Decide a case, then record the decision (unless ``record`` is false)
    in the audit trail before anyone is shown it: what ``next``, ``fhir
    export``, the service (``/v1/decide``, CDS Hooks) and the app's Decide
    button each do, written once.

    ``source`` says what to decide and how to read it (:class:`FromCaseFile`,
    :class:`FromBundleFile`, :class:`FromEitherFile`, :class:`FromDocument`);
    a :class:`Decided` already made (the app's proposal for the file version
    on screen) is recorded as it is. ``requester`` is who asked when a
    system did (a CDS Hooks call).

    The batch worker (:mod:`calfrehab.engine.batch`) keeps its own path on
    purpose: it is the hot path of a large batch, deciding a chunk of cases
    and appending them in one transaction per chunk."""
    decided: Decided
    match source:
        case Decided():
            decided = source
        case FromCaseFile(str() | Path() as path, review_date):
            decided = decide_case_file(path, reasoner, review_date=review_date)
        case _:
            decided = _decide_other(source, reasoner)
    if record:
        # The trail (sqlite3) loads only when a decision is recorded.
        from calfrehab.engine.api.trail import record as append

        append([decided], audit_path, clinician, requester)
    return decided


def _decide_other(source: object, reasoner: Reasoner) -> Decided:
    """decide_and_record's sources other than a Decided or a case file,
    imported here: deciding a case file defines none of them
    (api/sources.py says why)."""
    from calfrehab.engine.api.sources import FromBundleFile, FromDocument, FromEitherFile

    match source:
        case FromDocument(document, name):
            return decide_document(document, reasoner, name)
        case FromBundleFile(str() | Path() as path) | FromEitherFile(str() | Path() as path):
            from calfrehab.engine.api.cds import decide_any_path, decide_fhir_path

            read = decide_fhir_path if isinstance(source, FromBundleFile) else decide_any_path
            return read(path, reasoner)
        case _:
            # A program's mistake (a bare path, a dict, a path of 42):
            # named as the API's guard names one.
            raise ArgumentError("decide_and_record", "source", source,
                                "FromCaseFile, FromBundleFile or FromEitherFile of a path "
                                "(str or Path), FromDocument, or a Decided")
