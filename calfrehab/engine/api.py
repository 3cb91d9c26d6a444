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
- The contract's vocabulary and the domain errors.

The audit trail, batch and case-table names load on first use (PEP 562), so
``calfrehab next`` does not pay for modules it does not run.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from calfrehab.engine.casefile.model import Case, case_json_schema
from calfrehab.engine.casefile.validation import (
    read_case_file,
    validate_document,
)
from calfrehab.engine.errors import CalfrehabError, CaseValidationError, RuleError
from calfrehab.engine.explanation.document import (
    ENGINE_VERSION,
    DecisionDocument,
    decision_json_schema,
)
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
from calfrehab.engine.textsafe import for_terminal
from calfrehab.engine.vocabulary import (
    DECISION_KINDS,
    TRACKS,
    DecisionKind,
    Outcome,
    TrackName,
)

if TYPE_CHECKING:
    from calfrehab.engine.batch import (
        BatchError,
        BatchOptions,
        BatchSummary,
        format_for,
        run_batch,
    )
    from calfrehab.engine.course.replay import Course
    from calfrehab.engine.course.run import MAX_COURSE_WEEKS, simulate, simulate_document
    from calfrehab.engine.ruletest.casetable import run_tables
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
    "DECISION_KINDS",
    "ENGINE_VERSION",
    "MAX_COURSE_WEEKS",
    "TRACKS",
    "BatchError",
    "BatchOptions",
    "BatchSummary",
    "CalfrehabError",
    "Case",
    "CaseValidationError",
    "Course",
    "Decided",
    "DecisionDocument",
    "DecisionKind",
    "EntryKind",
    "ExportFormat",
    "Outcome",
    "RuleError",
    "TrackName",
    "add_audit_override",
    "case_json_schema",
    "compile_rules",
    "decide",
    "decide_document",
    "decide_path",
    "decision_json_schema",
    "explanation",
    "export_audit",
    "for_terminal",
    "format_for",
    "format_value",
    "list_audit",
    "load_ladder",
    "migrate_audit",
    "open_trail",
    "prepare",
    "record",
    "replay_decision",
    "run_batch",
    "run_tables",
    "show_decision",
    "simulate",
    "simulate_document",
    "validate_document",
    "validate_path",
    "verify_audit",
    "verify_trail",
]

# Names served on first use: public name -> (module, name there).
_LAZY: dict[str, tuple[str, str]] = {
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


def validate_path(path: str | Path) -> Case:
    """Validate a case file; ``-`` reads standard input. Raises
    :class:`CaseValidationError` with every error of the file."""
    case, _ = read_case_file(path)
    return case


def record(decided: list[Decided], audit_path: Path | None, clinician: str | None) -> None:
    """Append decisions to the audit trail, in one transaction."""
    from calfrehab.engine.trail.audit import AuditTrail, default_audit_path, prepare_entry

    # The case's canonical bytes were made (and hashed) when it was decided:
    # prepare_entry uses them rather than serialising the case again.
    prepared = [
        prepare_entry(d.decision.model_dump(mode="json"), d.document, case_bytes=d.case_bytes)
        for d in decided
    ]
    with AuditTrail(audit_path or default_audit_path()) as trail:
        trail.record_prepared(prepared, clinician)
