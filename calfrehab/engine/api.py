"""The library's public API: everything the CLI (or a clinic's own program) uses.

The CLI imports this module and nothing deeper (``tests/test_layers.py``
checks it), so whatever the command line can do, a program can do too, and
the modules behind it can be rearranged without breaking either. The
reference is ``docs/api.md``.

- Deciding: :func:`prepare` a rules directory once, then :func:`decide_path`
  (or :func:`decide_document`, :func:`decide`) per case; :func:`explanation`
  gives HOW / WHY-NOT as data; :func:`record` appends to the audit trail.
- Case files: :func:`validate_path`, :func:`case_json_schema`.
- Rules: :func:`compile_rules`, :func:`load_ladder`, :func:`run_tables`.
- Courses: :func:`simulate` (a case file) and :func:`simulate_document`
  project weekly reviews of a scripted patient (:class:`Course`).
- The audit trail: :func:`open_trail` and the views on it.
- Batches: :class:`BatchOptions`, :func:`run_batch`.
- FHIR and CDS Hooks: :func:`case_from_fhir`, :func:`case_to_fhir`,
  :func:`decision_to_fhir`, :func:`decide_fhir_path`; the ``cds_*``
  functions the service (``calfrehab serve``) builds cards and records
  feedback with.
- Writing case files: :func:`new_case`, :func:`log_session`,
  :func:`log_morning`, :func:`add_assessment` (interviews asked through an
  :data:`Ask`), :func:`import_csv` (a clinic's spreadsheet export).
- For people: :func:`write_report` (the course report), :func:`write_handout`
  (the patient's handout).
- The contract's vocabulary and the domain errors.

The audit trail, batch and case-table names load on first use (PEP 562), so
``calfrehab next`` does not pay for modules it does not run.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from calfrehab.engine.casefile.editor import (
    CaseFileBusy,
    CaseFileChanged,
    OtherPatientsCase,
    update_case,
    write_case_document,
)
from calfrehab.engine.casefile.model import Case, case_json_schema
from calfrehab.engine.casefile.validation import parse_json, read_case_file, validate_document
from calfrehab.engine.clinic import (
    ClinicConfig,
    ClinicConfigError,
    LoadedConfig,
    candidate_paths,
    clinic_today,
    configured_trail,
    load_config,
)
from calfrehab.engine.entry import interview as _interview
from calfrehab.engine.entry.interview import (
    ASSESS_QUESTIONS,
    LOG_QUESTIONS,
    MORNING_QUESTIONS,
    NEW_QUESTIONS,
    DuplicateSession,
    Written,
)
from calfrehab.engine.entry.interview import FLAG_ONLY as LOG_FLAG_ONLY
from calfrehab.engine.entry.plausible import (
    PlausibleRanges,
    Unusual,
    UnusualValues,
    load_ranges,
    unusual_in_case,
)
from calfrehab.engine.entry.questions import AnswerError, Ask, Question
from calfrehab.engine.errors import CalfrehabError, CaseValidationError, RuleError
from calfrehab.engine.explanation.document import (
    ENGINE_VERSION,
    DecisionDocument,
    decision_json_schema,
)
from calfrehab.engine.explanation.wording import (
    DECISION_WORDS,
    TRACK_TITLES,
    condition_line,
    criterion_text,
    decision_word,
    dose_text,
    merge_reasons,
    missing_criteria,
    reason_names,
    reason_unit,
    short_citation,
    track_title,
    unit_of,
)
from calfrehab.engine.explanation.wording import plain as clinician_text
from calfrehab.engine.fhir import SERVICE_ID, FhirMappingError, MappingProblem
from calfrehab.engine.inference.driver import Reasoner
from calfrehab.engine.knowledge.conditions import format_value
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
from calfrehab.engine.textsafe import csv_cell, for_terminal, for_terminal_lines
from calfrehab.engine.vocabulary import (
    DECISION_KINDS,
    TRACKS,
    DecisionKind,
    Outcome,
    TrackName,
)

if TYPE_CHECKING:
    from calfrehab.engine.acceptance import Accepted, CaseState, accept, case_state
    from calfrehab.engine.batch import (
        BatchError,
        BatchOptions,
        BatchSummary,
        format_for,
        run_batch,
    )
    from calfrehab.engine.course.replay import Course
    from calfrehab.engine.course.run import MAX_COURSE_WEEKS, simulate, simulate_document
    from calfrehab.engine.fhir.cdshooks import Feedback as CdsFeedback
    from calfrehab.engine.fhir.cdshooks import FeedbackRequest as CdsFeedbackRequest
    from calfrehab.engine.fhir.cdshooks import HookRequest as CdsHookRequest
    from calfrehab.engine.fhir.cdshooks import IssuedCard
    from calfrehab.engine.fhir.chart import NoRecord, chart_case, merge_case
    from calfrehab.engine.fhir.prefetch import (
        PrefetchGap,
        outcome_problem,
        prefetch_foreign,
        prefetch_gaps,
        prefetch_resources,
        resolve_prefetch_template,
        searchset_gap,
    )
    from calfrehab.engine.knowledge.compiler import CompiledRuleBase
    from calfrehab.engine.ruletest.casetable import run_tables
    from calfrehab.engine.ruletest.registration import RegistrationReport
    from calfrehab.engine.trail.audit import EntryKind, ExportFormat
    from calfrehab.engine.trail.views import add_override as add_audit_override
    from calfrehab.engine.trail.views import export_to_file as export_audit
    from calfrehab.engine.trail.views import list_rows as list_audit
    from calfrehab.engine.trail.views import migrate_trail as migrate_audit
    from calfrehab.engine.trail.views import open_existing as open_trail
    from calfrehab.engine.trail.views import replay as replay_decision
    from calfrehab.engine.trail.views import show as show_decision
    from calfrehab.engine.trail.views import verify_location as verify_audit
    from calfrehab.engine.trail.views import verify_summary as verify_trail

__all__ = [
    "ASSESS_QUESTIONS",
    "CDS_SERVICE_ID",
    "DECISION_KINDS",
    "DECISION_WORDS",
    "ENGINE_VERSION",
    "LOG_FLAG_ONLY",
    "LOG_QUESTIONS",
    "MAX_COURSE_WEEKS",
    "MORNING_QUESTIONS",
    "NEW_QUESTIONS",
    "TRACKS",
    "TRACK_TITLES",
    "Accepted",
    "AnswerError",
    "Ask",
    "BatchError",
    "BatchOptions",
    "BatchSummary",
    "CalfrehabError",
    "Case",
    "CaseFileBusy",
    "CaseFileChanged",
    "CaseState",
    "CaseValidationError",
    "CdsFeedback",
    "CdsFeedbackRequest",
    "CdsHookRequest",
    "ClinicConfig",
    "ClinicConfigError",
    "Course",
    "DateOrder",
    "Decided",
    "DecisionDocument",
    "DecisionKind",
    "DuplicateSession",
    "EntryKind",
    "ExportFormat",
    "FhirMappingError",
    "FutureReviewDate",
    "ImportResult",
    "IssuedCard",
    "LoadedConfig",
    "MappingProblem",
    "NoRecord",
    "OtherPatientsCase",
    "Outcome",
    "PlausibleRanges",
    "PrefetchGap",
    "Question",
    "Reasoner",
    "RuleError",
    "TrackName",
    "Unusual",
    "UnusualValues",
    "Written",
    "Wrote",
    "accept",
    "add_assessment",
    "add_audit_override",
    "candidate_paths",
    "case_from_fhir",
    "case_json",
    "case_json_schema",
    "case_reviewed_on",
    "case_state",
    "case_to_fhir",
    "cds_cards",
    "cds_discovery",
    "cds_example_request",
    "cds_feedback_reason",
    "cds_feedback_schema",
    "cds_hook_schema",
    "cds_missing_prefetch",
    "cds_prefetch_bundle",
    "chart_case",
    "check_output",
    "check_replace",
    "check_rules",
    "clinic_today",
    "clinician_text",
    "compile_rules",
    "condition_line",
    "configured_trail",
    "criterion_text",
    "csv_cell",
    "decide",
    "decide_any_path",
    "decide_case_file",
    "decide_document",
    "decide_fhir_path",
    "decide_path",
    "decision_json",
    "decision_json_schema",
    "decision_to_fhir",
    "decision_word",
    "dose_text",
    "explanation",
    "explanation_json",
    "export_audit",
    "fhir_json",
    "for_terminal",
    "for_terminal_lines",
    "format_for",
    "format_value",
    "future_review",
    "import_csv",
    "list_audit",
    "load_config",
    "load_ladder",
    "log_morning",
    "log_session",
    "merge_case",
    "merge_reasons",
    "migrate_audit",
    "missing_criteria",
    "new_case",
    "open_trail",
    "outcome_problem",
    "parse_cds_feedback",
    "parse_cds_hook",
    "parse_json",
    "plausible_ranges",
    "prefetch_foreign",
    "prefetch_gaps",
    "prefetch_resources",
    "prepare",
    "read_case_or_bundle",
    "read_fhir_case",
    "reason_names",
    "reason_unit",
    "record",
    "replay_decision",
    "report_charts",
    "resolve_prefetch_template",
    "run_batch",
    "run_tables",
    "searchset_gap",
    "short_citation",
    "show_decision",
    "simulate",
    "simulate_document",
    "today",
    "track_title",
    "trail_location",
    "unit_of",
    "unusual_values",
    "update_case",
    "validate_case",
    "validate_document",
    "validate_path",
    "verify_audit",
    "verify_trail",
    "write_case_document",
    "write_handout",
    "write_output",
    "write_report",
]

# Names served on first use: public name -> (module, name there).
_LAZY: dict[str, tuple[str, str]] = {
    "Accepted": ("calfrehab.engine.acceptance", "Accepted"),
    "CaseState": ("calfrehab.engine.acceptance", "CaseState"),
    "accept": ("calfrehab.engine.acceptance", "accept"),
    "case_state": ("calfrehab.engine.acceptance", "case_state"),
    "CdsFeedback": ("calfrehab.engine.fhir.cdshooks", "Feedback"),
    "CdsFeedbackRequest": ("calfrehab.engine.fhir.cdshooks", "FeedbackRequest"),
    "CdsHookRequest": ("calfrehab.engine.fhir.cdshooks", "HookRequest"),
    "IssuedCard": ("calfrehab.engine.fhir.cdshooks", "IssuedCard"),
    "PrefetchGap": ("calfrehab.engine.fhir.prefetch", "PrefetchGap"),
    "NoRecord": ("calfrehab.engine.fhir.chart", "NoRecord"),
    "chart_case": ("calfrehab.engine.fhir.chart", "chart_case"),
    "merge_case": ("calfrehab.engine.fhir.chart", "merge_case"),
    "outcome_problem": ("calfrehab.engine.fhir.prefetch", "outcome_problem"),
    "prefetch_foreign": ("calfrehab.engine.fhir.prefetch", "prefetch_foreign"),
    "prefetch_gaps": ("calfrehab.engine.fhir.prefetch", "prefetch_gaps"),
    "prefetch_resources": ("calfrehab.engine.fhir.prefetch", "prefetch_resources"),
    "resolve_prefetch_template": ("calfrehab.engine.fhir.prefetch", "resolve_prefetch_template"),
    "searchset_gap": ("calfrehab.engine.fhir.prefetch", "searchset_gap"),
    "Wrote": ("calfrehab.engine.report.build", "Wrote"),
    "ImportResult": ("calfrehab.engine.casefile.csvimport", "ImportResult"),
    "DateOrder": ("calfrehab.engine.casefile.csvimport", "DateOrder"),
    "BatchError": ("calfrehab.engine.batch", "BatchError"),
    "BatchOptions": ("calfrehab.engine.batch", "BatchOptions"),
    "BatchSummary": ("calfrehab.engine.batch", "BatchSummary"),
    "format_for": ("calfrehab.engine.batch", "format_for"),
    "run_batch": ("calfrehab.engine.batch", "run_batch"),
    "run_tables": ("calfrehab.engine.ruletest.casetable", "run_tables"),
    "Course": ("calfrehab.engine.course.replay", "Course"),
    "MAX_COURSE_WEEKS": ("calfrehab.engine.course.run", "MAX_COURSE_WEEKS"),
    "simulate": ("calfrehab.engine.course.run", "simulate"),
    "simulate_document": ("calfrehab.engine.course.run", "simulate_document"),
    "EntryKind": ("calfrehab.engine.trail.audit", "EntryKind"),
    "ExportFormat": ("calfrehab.engine.trail.audit", "ExportFormat"),
    "add_audit_override": ("calfrehab.engine.trail.views", "add_override"),
    "export_audit": ("calfrehab.engine.trail.views", "export_to_file"),
    "list_audit": ("calfrehab.engine.trail.views", "list_rows"),
    "migrate_audit": ("calfrehab.engine.trail.views", "migrate_trail"),
    "open_trail": ("calfrehab.engine.trail.views", "open_existing"),
    "replay_decision": ("calfrehab.engine.trail.views", "replay"),
    "show_decision": ("calfrehab.engine.trail.views", "show"),
    "verify_audit": ("calfrehab.engine.trail.views", "verify_location"),
    "verify_trail": ("calfrehab.engine.trail.views", "verify_summary"),
}


def __getattr__(name: str) -> Any:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value  # once loaded, a plain module attribute
    return value


def check_rules(rules_dir: Path | None = None) -> tuple[CompiledRuleBase, RegistrationReport]:
    """What ``calfrehab rules check`` does: compile a rules directory (raises
    :class:`RuleError` listing every problem, engine limits included), then
    register it with durable-rules and decide a probe case in a child process
    under the time limit of ``limits.toml`` (``CALFREHAB_RULES_CHECK_TIMEOUT``),
    reporting what the engine refuses and naming the rule."""
    from calfrehab.engine.limits import rules_check_timeout_s
    from calfrehab.engine.ruletest.registration import check_registration

    compiled = compile_rules(rules_dir)
    directory = Path(rules_dir) if rules_dir is not None else compiled.base.directory
    return compiled, check_registration(directory, timeout_s=rules_check_timeout_s())


def validate_path(path: str | Path) -> Case:
    """Validate a case file; ``-`` reads standard input. Raises
    :class:`CaseValidationError` with every error of the file."""
    case, _ = read_case_file(path)
    return case


def record(decided: list[Decided], audit_path: Path | None, clinician: str | None,
           requester: Mapping[str, Any] | None = None) -> None:
    """Append decisions to the audit trail, in one transaction; ``requester``
    is who asked when a system did (a CDS Hooks call: hookInstance, the
    token's iss and sub, fhirServer)."""
    from calfrehab.engine.trail.audit import AuditTrail, default_audit_path, prepare_entry

    # The case's canonical bytes were made (and hashed) when it was decided:
    # prepare_entry uses them rather than serialising the case again.
    prepared = [
        prepare_entry(d.decision.model_dump(mode="json"), d.document, case_bytes=d.case_bytes)
        for d in decided
    ]
    with AuditTrail(audit_path or default_audit_path()) as trail:
        trail.record_prepared(prepared, clinician, requester=requester)


def trail_location(audit_path: Path | None) -> Path:
    """The audit trail a command or the service records in: the one given,
    else the default (CALFREHAB_AUDIT or ~/.local/share/calfrehab)."""
    from calfrehab.engine.trail.audit import default_audit_path

    return audit_path or default_audit_path()


# ------------------------------------------------------------------ FHIR
# The FHIR mapping loads only when asked for: `calfrehab next` on a case
# file does not import fhir.resources.


def decision_json(decided: Decided) -> str:
    """The decision document as ``next --json`` prints it (and ``POST
    /v1/decide`` returns it): the same bytes from both."""
    return json.dumps(decided.decision.model_dump(mode="json"), indent=2,
                      ensure_ascii=False) + "\n"


def explanation_json(decided: Decided) -> str:
    """The explanation as ``explain --json`` prints it (and ``POST
    /v1/explain`` returns it)."""
    return json.dumps(explanation(decided), indent=2, ensure_ascii=False) + "\n"


def case_from_fhir(data: Any, source: str = "<bundle>", *, case_id: str | None = None,
                   review_date: date | None = None, ignore_unrelated: bool = False
                   ) -> tuple[Case, dict[str, Any]]:
    """The case a FHIR Bundle holds (validated) and its case-file document;
    FhirMappingError names each resource and element that does not map."""
    from calfrehab.engine.fhir.files import case_from_bundle

    return case_from_bundle(data, source, case_id=case_id, review_date=review_date,
                            ignore_unrelated=ignore_unrelated)


def read_fhir_case(path: str | Path, *, ignore_unrelated: bool = False
                   ) -> tuple[Case, dict[str, Any]]:
    """A FHIR Bundle file (or ``-``) read into a case."""
    from calfrehab.engine.fhir.files import case_from_bundle, read_json

    data, source = read_json(path)
    return case_from_bundle(data, source, ignore_unrelated=ignore_unrelated)


def decide_fhir_path(path: str | Path, engine: Reasoner) -> Decided:
    """Decide straight from a FHIR Bundle file (``next --fhir``)."""
    case, document = read_fhir_case(path)
    return decide(case, document, engine)


def decide_any_path(path: str | Path, engine: Reasoner) -> Decided:
    """Decide a case file or a FHIR Bundle, told apart by content."""
    from calfrehab.engine.fhir.files import read_case_or_bundle

    case, document = read_case_or_bundle(path)
    return decide(case, document, engine)


def case_to_fhir(case: Case) -> dict[str, Any]:
    """A case as a FHIR collection Bundle (JSON object)."""
    from calfrehab.engine.fhir.files import case_to_fhir as to_fhir

    return to_fhir(case)


def decision_to_fhir(decided: Decided, *, include_case: bool = True,
                     recorded: datetime | None = None) -> dict[str, Any]:
    """A decision as a FHIR Bundle: GuidanceResponse, RequestGroup with the
    next exercise per track, DetectedIssue for a referral, Provenance with
    the rule base's version and sha256; the case's resources first unless
    ``include_case`` is false."""
    from calfrehab.engine.fhir.files import decision_to_fhir as to_fhir

    return to_fhir(decided.case if include_case else None,
                   decided.decision.model_dump(mode="json"),
                   recorded or datetime.now(UTC))


def fhir_json(bundle: dict[str, Any]) -> str:
    """A FHIR JSON document as calfrehab writes it (indented, UTF-8)."""
    return json.dumps(bundle, indent=2, ensure_ascii=False) + "\n"


def case_json(document: dict[str, Any]) -> str:
    """A case-file document as calfrehab writes it (indented, UTF-8)."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def read_case_or_bundle(path: str | Path) -> Case:
    """A case file or a FHIR Bundle (told apart by content), validated."""
    from calfrehab.engine.fhir.files import read_case_or_bundle as read

    return read(path)[0]


# ------------------------------------------------------------ the service
# What `calfrehab serve` (calfrehab/server) calls: CDS Hooks requests,
# cards and feedback, the case schema, the audit trail's overrides.

CDS_SERVICE_ID = SERVICE_ID


def validate_case(document: Any, source: str = "<case>") -> Case:
    """A case document validated against the case format."""
    return validate_document(document, source)


def today() -> date:
    """Today's date in UTC: the review date of a CDS Hooks call (the day
    the clinician opens the chart)."""
    from calfrehab.engine.clock import utc_now

    return utc_now().date()


def case_reviewed_on(document: dict[str, Any], review: date) -> dict[str, Any]:
    """A copy of a case document with every date shifted by the same number
    of days so that its review falls on ``review`` (worked CDS Hooks
    examples: the service decides for today)."""
    from calfrehab.engine.casefile.timeshift import with_review_on

    return with_review_on(document, review)


def cds_discovery() -> dict[str, Any]:
    """The CDS Hooks discovery document (``GET /cds-services``)."""
    from calfrehab.engine.fhir.cdshooks import discovery

    return discovery()


def parse_cds_hook(data: Any) -> CdsHookRequest:
    """A patient-view hook request (pydantic ValidationError if it is not one)."""
    from calfrehab.engine.fhir.cdshooks import HookRequest

    return HookRequest.model_validate(data)


def parse_cds_feedback(data: Any) -> CdsFeedbackRequest:
    """A CDS Hooks feedback request (pydantic ValidationError if it is not one)."""
    from calfrehab.engine.fhir.cdshooks import FeedbackRequest

    return FeedbackRequest.model_validate(data)


def cds_missing_prefetch(request: CdsHookRequest) -> list[str]:
    from calfrehab.engine.fhir.cdshooks import missing_prefetch

    return missing_prefetch(request)


def cds_prefetch_bundle(request: CdsHookRequest) -> dict[str, Any]:
    from calfrehab.engine.fhir.cdshooks import prefetch_bundle

    return prefetch_bundle(request)


def cds_cards(decision: dict[str, Any], *, source_url: str, clinician: str
              ) -> tuple[list[dict[str, Any]], list[IssuedCard]]:
    """The cards for a decision document, and what to remember of each."""
    from calfrehab.engine.fhir.cdshooks import cards

    return cards(decision, source_url=source_url, clinician=clinician)


def cds_feedback_reason(item: CdsFeedback, card: IssuedCard
                        ) -> tuple[str, str | None, str | None]:
    """(reason, track, decision) of the override a feedback item records."""
    from calfrehab.engine.fhir.cdshooks import feedback_reason

    return feedback_reason(item, card)


def cds_hook_schema() -> dict[str, Any]:
    from calfrehab.engine.fhir.cdshooks import HookRequest

    return HookRequest.model_json_schema()


def cds_feedback_schema() -> dict[str, Any]:
    from calfrehab.engine.fhir.cdshooks import FeedbackRequest

    return FeedbackRequest.model_json_schema()


def cds_example_request(case: Case, patient_id: str) -> dict[str, Any]:
    """A patient-view hook request carrying ``case`` as a record system's
    prefetch (the worked exchange in docs/integration.md, and tests)."""
    from calfrehab.engine.fhir.cdshooks import example_request

    return example_request(case_to_fhir(case), patient_id)


def write_output(path: Path, text: str, *, inputs: tuple[str | Path, ...] = (),
                 trail: Path | None = None) -> None:
    """Write a command's output file safely: refuse an output that is an
    input, the audit trail, a device or a symlink, then write it atomically
    (readable by its owner only: it holds patient data)."""
    from calfrehab.engine.safeio import atomic_write_text, check_outputs

    check_outputs([path], inputs=[p for p in inputs if str(p) != "-"], trail=trail)
    atomic_write_text(path, text)


def check_replace(path: Path | None, *, force: bool, case_id: str | None = None) -> None:
    """Refuse an existing output unless ``force``, and a case file replaced
    by anything but the same patient's case (``case_id``) ever."""
    from calfrehab.engine.safeio import check_replace as _check

    _check(path, force=force, case_id=case_id)


def check_output(path: Path | None, *, inputs: tuple[str | Path, ...] = (),
                 trail: Path | None = None) -> None:
    """Refuse, before any work is done, an output that would destroy data
    (what :func:`write_output` checks again as it writes)."""
    from calfrehab.engine.safeio import check_outputs

    check_outputs([path], inputs=[p for p in inputs if str(p) != "-"], trail=trail)


def _today(today: date | None, near: Path | None = None) -> date:
    # The clinic's own calendar day (calfrehab.toml's time zone): a session
    # logged at 8 in the morning in Sydney is that day's, not the previous
    # day's in UTC.
    return today if today is not None else clinic_today(near=near)


def new_case(path: Path, ask: Ask, *, rules_dir: Path | None = None,
             today: date | None = None, overwrite: bool = False,
             confirm_unusual: bool = False) -> Written:
    """Ask for a new case (patient, condition, goal, red flags, programme)
    and write it; the starting doses offered come from the rules' ladder.
    No date may be after the clinic's today; ``overwrite`` replaces only
    the same patient's file."""
    return _interview.new_case(Path(path), ask, load_ladder(rules_dir), _today(today, Path(path)),
                               overwrite=overwrite, ranges=load_ranges(rules_dir),
                               confirm_unusual=confirm_unusual)


def log_session(path: Path, ask: Ask, *, rules_dir: Path | None = None,
                today: date | None = None, second_session: bool = False,
                confirm_unusual: bool = False,
                answered: frozenset[str] = frozenset()) -> Written:
    """Append a session; exercise, load and sets default from the programme.
    ``answered`` names the answers given up front (flags): one for a track
    that has not started is refused rather than dropped."""
    return _interview.log_session(Path(path), ask, _today(today, Path(path)),
                                  load_ladder(rules_dir), ranges=load_ranges(rules_dir),
                                  second_session=second_session,
                                  confirm_unusual=confirm_unusual, answered=answered)


def log_morning(path: Path, ask: Ask, *, today: date | None = None,
                replace: bool = False) -> Written:
    """Add next-morning pain and stiffness to a session (by default the most
    recent before today that has none); never over values already there
    unless ``replace``."""
    return _interview.log_morning(Path(path), ask, _today(today, Path(path)), replace=replace)


def add_assessment(path: Path, ask: Ask, *, rules_dir: Path | None = None,
                   today: date | None = None, confirm_unusual: bool = False) -> Written:
    """Append an assessment (heel-raise test, pain at rest, VISA-A, hop pain)."""
    return _interview.add_assessment(Path(path), ask, _today(today, Path(path)),
                                     ranges=load_ranges(rules_dir),
                                     confirm_unusual=confirm_unusual)


def unusual_values(case: Case, *, rules_dir: Path | None = None) -> list[Unusual]:
    """Every value of a case outside the plausible ranges of
    ``rules/records/plausibility.yaml`` (what ``validate`` warns about)."""
    return unusual_in_case(case, load_ranges(rules_dir))


class FutureReviewDate(CalfrehabError):
    """A case whose review date is after the clinic's today, decided without
    an explicit review date (clinical-basis §8)."""


def decide_case_file(path: str | Path, engine: Reasoner, *, review_date: date | None = None,
                     today: date | None = None) -> Decided:
    """Decide a case file (``-``: standard input) as ``next`` does. Without
    ``review_date`` the file's own review date must not be after the
    clinic's today; with it, the case is decided for that day, stated
    explicitly (a projection, as ``simulate`` and replays do)."""
    case, document = read_case_file(path)
    if review_date is not None:
        # A copy: the key keeps its place, so the bytes differ only there.
        moved = {**document, "review_date": review_date.isoformat()}
        return decide_document(moved, engine, str(path))
    near = None if str(path) == "-" else Path(path)
    reason = future_review(case, today=today, near=near)
    if reason is not None:
        raise FutureReviewDate(f"{for_terminal(str(path))}: {reason}")
    return decide(case, document, engine)


def plausible_ranges(rules_dir: Path | None = None) -> PlausibleRanges:
    """The plausible ranges (and their sources) entries are checked against."""
    return load_ranges(rules_dir)


def future_review(case: Case, *, today: date | None = None,
                  near: Path | None = None) -> str | None:
    """Why ``case`` may not be decided as it stands: its review date is
    after the clinic's today (time gates count to it), or None."""
    day = _today(today, near)
    if case.review_date <= day:
        return None
    return (f"review_date {case.review_date.isoformat()} is after today ({day.isoformat()} in "
            "the clinic's time zone); time gates count to the review date, so it is never "
            "taken on trust. Correct the date, or give --review-date "
            f"{case.review_date.isoformat()} to decide for that day explicitly")


# --- the course report and the patient handout -------------------------------

if TYPE_CHECKING:
    from calfrehab.engine.report.build import Wrote


def write_report(case: str | Path, out: Path, *, audit: Path | None = None,
                 rules_dir: Path | None = None, weeks: int = 12, author: str | None = None,
                 next_review: date | None = None) -> Wrote:
    """Decide a case and write its course report: one self-contained HTML
    file (charts as inline SVG, no script, no network), with the trail's
    decisions and overrides for the case when ``audit`` is given, and
    ``weeks`` of projected course (the course simulator's ideal patient; 0
    for none). Records nothing."""
    from calfrehab.engine.report.build import write_report as _write

    return _write(case, out, audit=audit, rules_dir=rules_dir, weeks=weeks, author=author,
                  next_review=next_review)


def write_handout(case: str | Path, out: Path, *, rules_dir: Path | None = None,
                  clinic_name: str | None = None, clinic_phone: str | None = None,
                  next_review: date | None = None) -> Wrote:
    """Decide a case and write the patient's handout of the next exercises
    (clinic name, phone and review interval from the clinic configuration
    unless given)."""
    from calfrehab.engine.report.build import write_handout as _write

    return _write(case, out, rules_dir=rules_dir, clinic_name=clinic_name,
                  clinic_phone=clinic_phone, next_review=next_review)


def report_charts(case: str | Path, *, rules_dir: Path | None = None,
                  weeks: int = 0) -> dict[str, str]:
    """The course report's charts for a case, each as inline SVG markup
    (an ``<svg>`` and its legend, every value escaped, no script), by id:
    chart-rung, chart-load, chart-pain, chart-morning, chart-stiffness,
    chart-heel-raise, chart-scores, chart-projection (with ``weeks``)."""
    from calfrehab.engine.report.build import report_data
    from calfrehab.engine.report.charts import all_charts

    data = report_data(case, rules_dir=rules_dir, weeks=weeks)
    return {k: str(c.svg) for k, c in all_charts(data).items()}


# --- import from a clinic's spreadsheet -------------------------------------

if TYPE_CHECKING:
    from calfrehab.engine.casefile.csvimport import DateOrder, ImportResult


def import_csv(path: Path, into: Path, *, date_order: DateOrder | None = None,
               dry_run: bool = False, rules_dir: Path | None = None) -> ImportResult:
    """Write (or add to) one case file per case from a clinic's CSV, one row
    per exercise per session (docs/csv-import.md). Bad rows are reported
    with row, column and expectation; the good rows are still written.
    Exercises may be given by id or by the rules' plain name."""
    from calfrehab.engine.casefile.csvimport import import_csv as _import
    from calfrehab.engine.knowledge.loader import load_ladder

    names = {info.name: ex for ex, info in load_ladder(rules_dir).exercises.items()}
    return _import(Path(path), Path(into), date_order=date_order, exercise_names=names,
                   dry_run=dry_run)
