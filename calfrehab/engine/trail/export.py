"""The trail's entries as exported: a canonical JSON line with the
documents parsed (``jsonl``), or a flat CSV row for a spreadsheet with
formula-like cells neutralised (``csv``). The loop over a consistent
snapshot is :meth:`AuditTrail.export`; these are the rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from calfrehab.engine.canonical import canonical_json
from calfrehab.engine.textsafe import csv_cell
from calfrehab.engine.trail.chain import AuditEntry
from calfrehab.engine.vocabulary import TRACKS

__all__ = ["CSV_COLUMNS", "csv_row", "jsonl_line"]


def jsonl_line(row: Mapping[str, Any], entry: AuditEntry, columns: Sequence[str]) -> str:
    """Every stored column but the documents' storage, and the documents
    parsed as ``case`` and ``decision``."""
    obj = {c: row[c] for c in columns if c not in ("case_json", "decision_json", "decision_body")}
    obj["case"] = entry.case
    obj["decision"] = entry.decision
    return canonical_json(obj) + "\n"


CSV_COLUMNS: Final = (
    "seq",
    "recorded_at",
    "kind",
    "case_id",
    "decision_id",
    "review_date",
    "outcome",
    *TRACKS,
    "override_track",
    "override_decision",
    "reason",
    "clinician",
    "rulebase_version",
    "rulebase_sha256",
    "engine_version",
    "case_sha256",
    "entry_id",
    "prev_hash",
    "entry_hash",
    # Format 3: an acceptance's links, and who asked.
    "override_entry_id",
    "program_sha256",
    "hook_instance",
    "token_iss",
    "token_sub",
    "fhir_server",
)


def csv_row(row: Mapping[str, Any], entry: AuditEntry) -> list[str]:
    doc = entry.decision
    flat: dict[str, Any] = {c: row.get(c) for c in CSV_COLUMNS}
    if entry.kind == "decision":
        # The engine owns the rest of the document; read defensively so an
        # unexpected shape leaves a blank cell rather than failing the export.
        flat["outcome"] = doc.get("outcome")
        tracks = doc.get("tracks")
        for track in TRACKS:
            info = tracks.get(track) if isinstance(tracks, dict) else None
            flat[track] = info.get("decision") if isinstance(info, dict) else None
    elif entry.kind == "override":
        flat["override_track"] = doc.get("track")
        flat["override_decision"] = doc.get("decision")
        flat["reason"] = doc.get("reason")
    else:
        flat["override_entry_id"] = doc.get("override_entry_id")
        flat["program_sha256"] = doc.get("program_sha256")
    asked = entry.requester or {}
    for column, key in (("hook_instance", "hookInstance"), ("token_iss", "iss"),
                        ("token_sub", "sub"), ("fhir_server", "fhirServer")):
        flat[column] = asked.get(key)
    # Text from a case or a person (a clinician, a reason, a case_id) may
    # start like a spreadsheet formula: neutralised (OWASP CSV injection).
    return ["" if flat[c] is None else str(csv_cell(flat[c])) for c in CSV_COLUMNS]
