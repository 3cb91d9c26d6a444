"""One output row per decided case: the flat CSV row and the JSON row.

Every CSV column is described in :data:`CSV_COLUMN_DOCS` (and so in
``docs/batch.md`` and the command's help). Text that came from a file name
or a case (file, case id, reasons) goes through
:func:`calfrehab.engine.textsafe.csv_cell`, so a cell that a spreadsheet
would run as a formula (``=``, ``+``, ``-``, ``@`` first) is shown as text
(OWASP's advice on CSV injection). Numbers are written as numbers.
"""

from __future__ import annotations

from typing import Any

from calfrehab.engine.canonical import compact_json, compact_json_checked
from calfrehab.engine.textsafe import csv_cell
from calfrehab.engine.vocabulary import TRACKS

__all__ = [
    "CSV_COLUMNS",
    "CSV_COLUMN_DOCS",
    "REASON_SEPARATOR",
    "csv_row",
    "json_row",
    "summary_fields",
]

#: Between two reasons in one cell.
REASON_SEPARATOR = " | "

_TRACK_PARTS: tuple[tuple[str, str], ...] = (
    ("decision", "the track's decision: progress, hold, regress, start, not_started or refer"),
    ("next_exercise", "exercise id of the next prescription (empty when there is none)"),
    ("next_load_kg", "added load of the next prescription, in kg"),
    ("next_sets", "sets of the next prescription"),
    ("next_reps", "repetitions per set, or what next_unit says each set counts"),
    ("next_unit", "what next_reps counts: reps, seconds (a hold), contacts (hops) "
                  "or minutes (running)"),
    ("reasons", "the reasons given for this track only, in firing order, joined by ' | '"),
)

CSV_COLUMN_DOCS: dict[str, str] = {
    "file": "the input file the case came from",
    "line": "its line in a JSON Lines file (empty for a case file)",
    "case_id": "the case's case_id",
    "review_date": "the case's review date (YYYY-MM-DD): the day the decision is for",
    "decision_id": "the decision's id in the audit trail",
    "outcome": "continue or refer",
    **{
        f"{track}_{part}": text
        for track in TRACKS
        for part, text in _TRACK_PARTS
    },
    "condition_kind": "the case's condition (condition.kind)",
    "reasons": "reasons that hold for the whole case (a referral, say), joined by ' | '",
    "first_reason_rule": "id of the first rule in the decision's reasons",
    "first_reason": "text of the first reason",
}

CSV_COLUMNS: tuple[str, ...] = tuple(CSV_COLUMN_DOCS)


def _number(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _text(value: Any) -> str:
    if value is None:
        return ""
    return str(csv_cell(str(value)))


def csv_row(decision: dict[str, Any], condition: str | None, file: str,
            line: int | None) -> list[str]:
    """The flat CSV row of one decision document (:data:`CSV_COLUMNS`)."""
    reasons: list[dict[str, Any]] = decision.get("reasons") or []
    by_track: dict[str | None, list[str]] = {}
    for reason in reasons:
        by_track.setdefault(reason.get("track"), []).append(str(reason.get("text", "")))
    cells = [
        _text(file), _number(line), _text(decision.get("case_id")),
        _text(decision.get("review_date")), _text(decision.get("decision_id")),
        _text(decision.get("outcome")),
    ]
    tracks = decision.get("tracks") or {}
    for track in TRACKS:
        info = tracks.get(track) or {}
        nxt = info.get("next") or {}
        cells += [
            _text(info.get("decision")), _text(nxt.get("exercise")),
            _number(nxt.get("load_kg")), _number(nxt.get("sets")), _number(nxt.get("reps")),
            _text(nxt.get("unit")), _text(REASON_SEPARATOR.join(by_track.get(track, ()))),
        ]
    first = reasons[0] if reasons else {}
    cells += [
        _text(condition), _text(REASON_SEPARATOR.join(by_track.get(None, ()))),
        _text(first.get("rule")), _text(first.get("text")),
    ]
    return cells


def json_row(decision: dict[str, Any], file: str, line: int | None, *,
             checked: bool = False) -> str:
    """The decision document plus its ``source`` (file and line), one line.
    ``checked``: the decision is data its maker vouches for, every float in
    it spelled alike by orjson and the standard encoder (a worker's
    DecisionData with ``floats_alike``), so its text needs no guard."""
    doc = dict(decision)
    doc["source"] = {"file": file, "line": line}
    return compact_json_checked(doc) if checked else compact_json(doc)


def summary_fields(decision: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    """(outcome, each track's decision), for the run's summary counts."""
    tracks = decision.get("tracks") or {}
    return (str(decision.get("outcome")),
            tuple(str((tracks.get(t) or {}).get("decision")) for t in TRACKS))
