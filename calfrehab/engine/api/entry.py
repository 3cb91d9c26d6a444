"""Writing case files: for the interviews (``new``, ``log``, ``assess``),
``import`` and the commands that write a file.

The interviews ask their questions through an :data:`Ask` and write the
case atomically: :func:`new_case`, :func:`log_session`,
:func:`log_morning`, :func:`add_assessment`. :func:`import_csv` writes one
case file per case from a clinic's spreadsheet export.
:func:`write_output` and :func:`check_output` guard any command's output
file. :func:`case_lock` holds a case file's write lock, the one every
write above takes (re-entrant in one process), across a caller's own
check-then-write: the app compares the sha256 a form was opened with and
writes under one lock. The clinic's configuration (calfrehab.toml: its
name, time zone, trail) is read with :func:`load_config`, and
:func:`config_problems` words a configuration's problems (the service's
too);
:func:`clinic_today` is the day the interviews default to.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from calfrehab.engine.casefile.model import Case
from calfrehab.engine.clinic import (
    candidate_paths,
    clinic_today,
    configured_trail,
    load_config,
)
from calfrehab.engine.safeio import check_replace

if TYPE_CHECKING:
    from calfrehab.engine.casefile.csvimport import DateOrder, ImportResult
    from calfrehab.engine.casefile.editor import (
        case_lock,
        update_case,
        write_case_document,
    )
    from calfrehab.engine.clinicmodels import (
        ClinicConfig,
        LoadedConfig,
        TimeZoneName,
        config_problems,
    )
    from calfrehab.engine.entry.interview import (
        ASSESS_QUESTIONS,
        LOG_FLAG_ONLY,
        LOG_QUESTIONS,
        MORNING_QUESTIONS,
        NEW_QUESTIONS,
        Written,
    )
    from calfrehab.engine.entry.plausible import (
        PlausibleRanges,
        Unusual,
        plausible_ranges,
    )
    from calfrehab.engine.entry.questions import Ask, Question
else:
    from calfrehab.engine.api._lazy import lazy_names

    # The interviews, the editor and the CSV import load when first used
    # (and the rule file loader, imported where a ladder is read): `next`
    # reads the clinic's configuration from here and nothing else.
    __getattr__, __dir__ = lazy_names(__name__, {
        "calfrehab.engine.casefile.csvimport": ("DateOrder", "ImportResult"),
        # The configuration's models (pydantic classes): only a file found,
        # or a caller naming them, needs them (clinic.py reads none without).
        "calfrehab.engine.clinicmodels": ("ClinicConfig", "LoadedConfig", "TimeZoneName",
                                          "config_problems"),
        "calfrehab.engine.casefile.editor": ("case_lock", "update_case", "write_case_document"),
        "calfrehab.engine.entry.interview": (
            "ASSESS_QUESTIONS", "LOG_FLAG_ONLY", "LOG_QUESTIONS", "MORNING_QUESTIONS",
            "NEW_QUESTIONS", "Written"),
        "calfrehab.engine.entry.plausible": ("PlausibleRanges", "Unusual", "plausible_ranges"),
        "calfrehab.engine.entry.questions": ("Ask", "Question"),
    })

__all__ = [
    "ASSESS_QUESTIONS",
    "LOG_FLAG_ONLY",
    "LOG_QUESTIONS",
    "MORNING_QUESTIONS",
    "NEW_QUESTIONS",
    "Ask",
    "ClinicConfig",
    "DateOrder",
    "ImportResult",
    "LoadedConfig",
    "PlausibleRanges",
    "Question",
    "TimeZoneName",
    "Unusual",
    "Written",
    "add_assessment",
    "candidate_paths",
    "case_json",
    "case_lock",
    "check_output",
    "check_replace",
    "clinic_today",
    "config_problems",
    "configured_trail",
    "import_csv",
    "load_config",
    "log_morning",
    "log_session",
    "new_case",
    "plausible_ranges",
    "unusual_values",
    "update_case",
    "write_case_document",
    "write_output",
]


def _clinic_day(today: date | None, near: Path | None = None) -> date:
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
    from calfrehab.engine.entry import interview
    from calfrehab.engine.entry.plausible import plausible_ranges
    from calfrehab.engine.knowledge.loader import load_ladder

    return interview.new_case(Path(path), ask, load_ladder(rules_dir),
                              _clinic_day(today, Path(path)), overwrite=overwrite,
                              ranges=plausible_ranges(rules_dir), confirm_unusual=confirm_unusual)


def log_session(path: Path, ask: Ask, *, rules_dir: Path | None = None,
                today: date | None = None, second_session: bool = False,
                confirm_unusual: bool = False,
                answered: frozenset[str] = frozenset()) -> Written:
    """Append a session; exercise, load and sets default from the programme.
    ``answered`` names the answers given up front (flags): one for a track
    that has not started is refused rather than dropped."""
    from calfrehab.engine.entry import interview
    from calfrehab.engine.entry.plausible import plausible_ranges
    from calfrehab.engine.knowledge.loader import load_ladder

    return interview.log_session(Path(path), ask, _clinic_day(today, Path(path)),
                                 load_ladder(rules_dir), ranges=plausible_ranges(rules_dir),
                                 second_session=second_session,
                                 confirm_unusual=confirm_unusual, answered=answered)


def log_morning(path: Path, ask: Ask, *, today: date | None = None,
                replace: bool = False) -> Written:
    """Add next-morning pain and stiffness to a session (by default the most
    recent before today that has none); never over values already there
    unless ``replace``."""
    from calfrehab.engine.entry import interview

    return interview.log_morning(Path(path), ask, _clinic_day(today, Path(path)),
                                 replace=replace)


def add_assessment(path: Path, ask: Ask, *, rules_dir: Path | None = None,
                   today: date | None = None, confirm_unusual: bool = False) -> Written:
    """Append an assessment (heel-raise test, pain at rest, VISA-A, hop pain)."""
    from calfrehab.engine.entry import interview
    from calfrehab.engine.entry.plausible import plausible_ranges

    return interview.add_assessment(Path(path), ask, _clinic_day(today, Path(path)),
                                    ranges=plausible_ranges(rules_dir),
                                    confirm_unusual=confirm_unusual)


def unusual_values(case: Case, *, rules_dir: Path | None = None) -> list[Unusual]:
    """Every value of a case outside the plausible ranges of
    ``rules/records/plausibility.yaml`` (what ``validate`` warns about)."""
    from calfrehab.engine.entry.plausible import plausible_ranges, unusual_in_case

    return unusual_in_case(case, plausible_ranges(rules_dir))


def import_csv(path: Path, into: Path, *, date_order: DateOrder | None = None,
               dry_run: bool = False, rules_dir: Path | None = None,
               encoding: str | None = None) -> ImportResult:
    """Write (or add to) one case file per case from a clinic's CSV, one row
    per exercise per session (docs/csv-import.md). Bad rows are reported
    with row, column and expectation; the good rows are still written.
    Exercises may be given by id or by the rules' plain name. Text that is
    not in ``encoding`` (UTF-8 unless given) is refused, naming the row."""
    from calfrehab.engine.casefile import csvimport
    from calfrehab.engine.knowledge.loader import load_ladder

    names = {info.name: ex for ex, info in load_ladder(rules_dir).exercises.items()}
    return csvimport.import_csv(Path(path), Path(into), date_order=date_order,
                                exercise_names=names, dry_run=dry_run,
                                encoding=encoding or csvimport.DEFAULT_ENCODING)


def case_json(document: dict[str, Any]) -> str:
    """A case-file document as calfrehab writes it (indented, UTF-8)."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def write_output(path: Path, text: str, *, inputs: tuple[str | Path, ...] = (),
                 trail: Path | None = None) -> None:
    """Write a command's output file safely: refuse an output that is an
    input, the audit trail, a device or a symlink, then write it atomically
    (readable by its owner only: it holds patient data)."""
    from calfrehab.engine.safeio import atomic_write_text, check_outputs

    check_outputs([path], inputs=[p for p in inputs if str(p) != "-"], trail=trail)
    atomic_write_text(path, text)


def check_output(path: Path | None, *, inputs: tuple[str | Path, ...] = (),
                 trail: Path | None = None) -> None:
    """Refuse, before any work is done, an output that would destroy data
    (what :func:`write_output` checks again as it writes)."""
    from calfrehab.engine.safeio import check_outputs

    check_outputs([path], inputs=[p for p in inputs if str(p) != "-"], trail=trail)
