"""The hash chain: how an entry's hash is computed in each format version,
how a stored row's documents are read back, and how a run of rows is
verified.

``entry_hash = sha256(prev_hash + canonical_json({hashed columns}))`` as
lowercase hex, the first ``prev_hash`` being 64 zeros. Version 1 hashes
every column but ``entry_hash`` (the documents as canonical JSON text);
version 2 hashes every column but ``entry_hash`` and the compressed
``decision_body``, whose content is covered by ``decision_body_sha256``
(and the case's by ``case_body_sha256``), which verification checks
against the decompressed bytes. Version 3 hashes as version 2 does, with
the columns it added (``requester``) in the object only when they hold a
value: an entry written by version 2 has the same hash in version 3.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, cast

from calfrehab.engine.canonical import CanonicalJSONError, canonical_bytes, sha256_hex
from calfrehab.engine.trail import codec
from calfrehab.engine.trail.errors import AuditError
from calfrehab.engine.trail.schema import (
    ENTRY_KINDS,
    GENESIS_HASH,
    HASHED_COLUMNS,
    NULL_OMITTED_COLUMNS,
    TEXT_COLUMNS,
    V1_HASHED_COLUMNS,
)

__all__ = [
    "AuditEntry",
    "Documents",
    "EntryKind",
    "VerifyReport",
    "entry_from_row",
    "entry_hash",
    "entry_hash_v1",
    "row_documents",
    "row_problem",
    "v1_view",
    "verify_rows",
]

EntryKind = Literal["decision", "override", "accepted"]


def _chained(prev_hash: object, payload: Mapping[str, Any]) -> str:
    # prev_hash is both the prefix and one of the hashed fields: the prefix
    # is the classic chain construction, the field keeps "every stored field
    # is covered" true without exceptions.
    return sha256_hex(str(prev_hash).encode("utf-8") + canonical_bytes(payload))


def entry_hash(row: Mapping[str, Any]) -> str:
    """The version-2/3 hash of a row (its ``prev_hash`` included). A column
    version 3 added is hashed only when it holds a value, so a version-2
    row (which has none of them) hashes as version 2 hashed it."""
    return _chained(
        row["prev_hash"],
        {
            c: row.get(c)
            for c in HASHED_COLUMNS
            if not (c in NULL_OMITTED_COLUMNS and row.get(c) is None)
        },
    )


def entry_hash_v1(row: Mapping[str, Any]) -> str:
    """The version-1 hash of a row with ``case_json``/``decision_json`` text."""
    return _chained(row["prev_hash"], {c: row[c] for c in V1_HASHED_COLUMNS})


@dataclass(frozen=True, slots=True)
class Documents:
    """A row's documents as their stored canonical bytes."""

    case: bytes | None
    decision: bytes


def row_documents(
    row: Mapping[str, Any], version: int, dictionaries: Mapping[int, bytes]
) -> Documents:
    """The canonical bytes of a row's documents (CodecError/AuditError if
    they cannot be read back)."""
    if version == 1:
        case_text, decision_text = row["case_json"], row["decision_json"]
        if not isinstance(decision_text, str) or not (
            case_text is None or isinstance(case_text, str)
        ):
            raise AuditError("case_json/decision_json is not text")
        return Documents(
            None if case_text is None else case_text.encode("utf-8"),
            decision_text.encode("utf-8"),
        )
    decision = codec.decompress(row["decision_body"], dictionaries)
    case: bytes | None = None
    if row["case_body_sha256"] is not None:
        body = row.get("case_body")
        if body is None:
            raise AuditError(f"the stored case {str(row['case_body_sha256'])[:12]}… is missing")
        case = codec.decompress(body, dictionaries)
    return Documents(case, decision)


def v1_view(row: Mapping[str, Any], docs: Documents, v1_prev: str) -> dict[str, Any]:
    """A version-2 row as the version-1 row it was migrated from (to
    recompute its ``v1_hash``). The documents are the very bytes version 1
    stored as text, so the text is exact."""
    view = {c: row[c] for c in V1_HASHED_COLUMNS if c in row}
    view["case_json"] = None if docs.case is None else docs.case.decode("utf-8")
    view["decision_json"] = docs.decision.decode("utf-8")
    view["prev_hash"] = v1_prev
    return view


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One entry of the trail, with its documents parsed.

    For ``kind == "decision"``, ``case`` is the full case document and
    ``decision`` the full decision document. For ``kind == "override"``,
    ``case`` is None and ``decision`` is the override payload
    ``{decision_id, clinician, reason, track, decision}`` (and, from
    format 3, ``prescriptions`` when the clinician gave their own). For
    ``kind == "accepted"``, ``case`` is None and ``decision`` is the
    accepted payload ``{decision_id, override_entry_id, clinician,
    program, program_sha256}``. An override's and an acceptance's case and
    rulebase columns are copied from the decision so that filtering by
    case finds them too. ``requester`` is who asked (format 3), or None.
    """

    seq: int
    entry_id: str
    kind: EntryKind
    recorded_at: datetime
    clinician: str | None
    decision_id: str
    case_id: str
    case_sha256: str
    review_date: date
    rulebase_version: str
    rulebase_sha256: str
    engine_version: str
    case: dict[str, Any] | None
    decision: dict[str, Any]
    prev_hash: str
    entry_hash: str
    requester: dict[str, Any] | None = None


def _type_problem(row: Mapping[str, Any]) -> str | None:
    for column in TEXT_COLUMNS:
        if column in row and row[column] is not None and not isinstance(row[column], str):
            kind = "a BLOB" if isinstance(row[column], bytes) else type(row[column]).__name__
            return f"column {column} holds {kind}, not text"
    if not isinstance(row.get("seq"), int):
        return "column seq is not an integer"
    return None


def entry_from_row(
    row: Mapping[str, Any], version: int, dictionaries: Mapping[int, bytes]
) -> AuditEntry:
    """Parse one stored row. A row that does not parse was tampered with or
    damaged; say which and point at verify rather than failing obscurely."""
    seq = row["seq"]
    try:
        problem = _type_problem(row)
        if problem is not None:
            raise ValueError(problem)
        docs = row_documents(row, version, dictionaries)
        case = None if docs.case is None else json.loads(docs.case)
        decision = json.loads(docs.decision)
        if not isinstance(decision, dict) or not (case is None or isinstance(case, dict)):
            raise ValueError("the stored documents are not JSON objects")
        kind = row["kind"]
        if kind not in ENTRY_KINDS or (kind == "accepted" and version < 3):
            raise ValueError(f"unknown kind {kind!r}")
        requester = None
        if row.get("requester") is not None:
            requester = json.loads(row["requester"])
            if not isinstance(requester, dict):
                raise ValueError("the stored requester is not a JSON object")
        return AuditEntry(
            seq=int(seq),
            entry_id=row["entry_id"],
            kind=cast(EntryKind, kind),
            recorded_at=datetime.fromisoformat(row["recorded_at"]),
            clinician=row["clinician"],
            decision_id=row["decision_id"],
            case_id=row["case_id"],
            case_sha256=row["case_sha256"],
            review_date=date.fromisoformat(row["review_date"]),
            rulebase_version=row["rulebase_version"],
            rulebase_sha256=row["rulebase_sha256"],
            engine_version=row["engine_version"],
            case=case,
            decision=decision,
            prev_hash=row["prev_hash"],
            entry_hash=row["entry_hash"],
            requester=requester,
        )
    except (TypeError, ValueError, AuditError) as exc:
        raise AuditError(
            f"audit entry seq {seq} is corrupt ({exc}); run the audit verify command"
        ) from exc


def row_problem(
    row: Mapping[str, Any], version: int, dictionaries: Mapping[int, bytes]
) -> tuple[str | None, Documents | None]:
    """What is wrong with one row on its own (its hash and, in version 2,
    its documents' hashes), or None; with the documents when readable."""
    seq = row["seq"]
    problem = _type_problem(row)
    if problem is not None:
        return f"entry seq {seq} is corrupt: {problem}", None
    try:
        recomputed = entry_hash_v1(row) if version == 1 else entry_hash(row)
    except CanonicalJSONError as exc:
        return f"entry seq {seq} holds a value that is not text or number: {exc}", None
    if recomputed != row["entry_hash"]:
        return f"entry seq {seq} was altered: its hash does not match its content", None
    try:
        docs = row_documents(row, version, dictionaries)
    except (codec.CodecError, AuditError) as exc:
        return f"entry seq {seq} was altered: {exc}", None
    if version >= 2:
        if sha256_hex(docs.decision) != row["decision_body_sha256"]:
            return f"entry seq {seq} was altered: its stored decision does not match its hash", docs
        if docs.case is not None and sha256_hex(docs.case) != row["case_body_sha256"]:
            return f"entry seq {seq} was altered: its stored case does not match its hash", docs
    return None, docs


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """Result of verifying a trail.

    ``entries_checked`` counts the entries examined, the failing one
    included. ``first_bad_seq`` is the lowest seq at which the trail is
    wrong; for deleted entries that is the seq that is missing. ``last_hash``
    and ``entries_checked`` of an ok report are the head worth writing down
    outside the file.
    """

    ok: bool
    entries_checked: int
    first_bad_seq: int | None
    problem: str | None
    last_hash: str = GENESIS_HASH


def verify_rows(
    rows: Iterable[Mapping[str, Any]],
    version: int,
    meta: Mapping[str, Any],
    dictionaries: Mapping[int, bytes],
) -> VerifyReport:
    """Check a whole trail's rows, in seq order, against its ``meta``.
    Stops at the first problem."""
    checked = 0
    prev = GENESIS_HASH
    v1_prev = GENESIS_HASH
    v1_count = 0
    v1_ended = False

    def bad(seq: int, problem: str) -> VerifyReport:
        return VerifyReport(False, checked, seq, problem, prev)

    for row in rows:
        expected_seq = checked + 1
        checked += 1
        seq = row["seq"]
        if seq != expected_seq:
            if isinstance(seq, int) and seq > expected_seq:
                return bad(
                    expected_seq,
                    f"entry seq {expected_seq} is missing (next entry is seq {seq}): "
                    "entries were deleted",
                )
            return bad(expected_seq, f"unexpected seq {seq!r} where seq {expected_seq} belongs")
        if row["prev_hash"] != prev:
            return bad(
                seq,
                f"entry seq {seq} does not link to "
                + (f"entry seq {seq - 1}" if seq > 1 else "the start of the trail")
                + ": entries were removed, reordered or inserted",
            )
        problem, docs = row_problem(row, version, dictionaries)
        if problem is not None:
            return bad(seq, problem)
        if version >= 2 and row["v1_hash"] is not None:
            # Migrated from version 1: the old chain must still check out.
            if v1_ended:
                return bad(seq, f"entry seq {seq} claims a version-1 hash after newer entries")
            assert docs is not None
            if entry_hash_v1(v1_view(row, docs, v1_prev)) != row["v1_hash"]:
                return bad(seq, f"entry seq {seq} was altered: its version-1 hash does not match")
            v1_prev = row["v1_hash"]
            v1_count += 1
        else:
            v1_ended = True
        prev = row["entry_hash"]

    meta_count, meta_last = meta.get("entry_count"), meta.get("last_hash")
    if not isinstance(meta_count, int) or not isinstance(meta_last, str):
        return VerifyReport(False, checked, None, "meta has no valid entry_count/last_hash", prev)
    if checked < meta_count:
        return VerifyReport(
            False,
            checked,
            checked + 1,
            f"the trail has {checked} entries but recorded {meta_count}: "
            "entries were removed from the end",
            prev,
        )
    if checked > meta_count:
        return VerifyReport(
            False,
            checked,
            meta_count + 1,
            f"the trail has {checked} entries but recorded {meta_count}: "
            "entries were added outside calfrehab",
            prev,
        )
    if prev != meta_last:
        return VerifyReport(
            False,
            checked,
            checked if checked else 1,
            "the last entry's hash does not match the one recorded in meta",
            prev,
        )
    if (
        version >= 2
        and "v1_entry_count" in meta
        and (meta.get("v1_entry_count"), meta.get("v1_last_hash")) != (v1_count, v1_prev)
    ):
        return VerifyReport(
            False,
            checked,
            min(v1_count + 1, max(checked, 1)),
            "the entries migrated from format version 1 do not end where the "
            "migration recorded (v1_entry_count/v1_last_hash in meta)",
            prev,
        )
    return VerifyReport(True, checked, None, None, prev)
