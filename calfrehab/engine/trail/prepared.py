"""A decision made ready for the trail where it was made.

A batch decides cases in worker processes and records them in the parent.
Serialising, hashing and compressing the documents is most of what
recording costs, so a worker does it, once: :func:`prepare_entry` turns a
(decision, case) pair into a :class:`PreparedEntry` holding the compressed
canonical bytes of both documents and their sha256s, and the parent's
:meth:`AuditTrail.record_prepared` only chains and inserts it (it hashes a
few short strings per entry and never parses or re-serialises a document).

A PreparedEntry is plain data (str and bytes), so it pickles small: about
1 KB for a decision and its case on the benchmark cases.

A batch worker prepares a chunk's entries with ``compress=False`` and then
compresses them together (:func:`compress_entries`): every case, then
every decision, back to back. Compressing one document between two
engine runs found the compressor's tables and dictionary evicted from the
core's caches each time (measured in a worker: a case's first compression
22 us, the same bytes again at once 9 us); in a run they stay cached.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any, Final, NamedTuple, TypeVar

from calfrehab.engine.canonical import CanonicalJSONError, canonical_bytes, sha256_hex
from calfrehab.engine.trail import codec
from calfrehab.engine.trail.errors import AuditError

__all__ = [
    "PreparedEntry",
    "checked_date",
    "compress_entries",
    "is_compressed",
    "prepare_entry",
    "to_canonical",
]

_ISO_DATE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")

_T = TypeVar("_T")


class PreparedEntry(NamedTuple):
    """One decision ready to record: its columns, and both documents as
    compressed canonical bytes with the sha256 of the uncompressed bytes.

    A named tuple rather than a frozen dataclass because every one crosses
    a process boundary: a slotted dataclass pickles through its Python
    ``__getstate__``/``__setstate__``, a named tuple as its class and
    values. Measured on 64 entries (as a batch's chunk): 2.5 -> 1.2 us to
    pickle one in the worker, 2.9 -> 0.6 us to unpickle it in the parent.

    ``case_body_sha256`` is the hash of the stored case bytes (the key of
    the trail's ``cases`` table); ``case_sha256`` is the hash the decision
    names. They are equal unless the decision was built for other bytes,
    which :func:`AuditTrail.check_entry` reports.
    """

    decision_id: str
    case_id: str
    case_sha256: str
    review_date: str
    rulebase_version: str
    rulebase_sha256: str
    engine_version: str
    case_body_sha256: str
    case_body: bytes
    decision_body_sha256: str
    decision_body: bytes


def _required_str(doc: Mapping[str, Any], key: str, what: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value:
        raise AuditError(f"{what} has no {key} (a non-empty string is required)")
    return value


def checked_date(value: object, what: str) -> str:
    """Strictly the spec's YYYY-MM-DD: date.fromisoformat alone would also
    take "20261120", which would then be stored in a second spelling."""
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise AuditError(f"{what} must be a date YYYY-MM-DD, got {value!r}")
    try:
        date.fromisoformat(value)
    except ValueError as exc:
        raise AuditError(f"{what} is not a valid date: {value!r}") from exc
    return value


def to_canonical(
    obj: _T, what: str, serialise: Callable[[_T], bytes] = canonical_bytes
) -> bytes:
    """``serialise(obj)``: the canonical bytes of ``obj``, or an AuditError
    naming ``what`` when it cannot be JSON. ``serialise`` is for a value
    that makes its own canonical bytes (a batch worker's DecisionData), so
    that its refusal reads as prepare_entry's own, worded in this one place."""
    try:
        return serialise(obj)
    except CanonicalJSONError as exc:
        raise AuditError(f"{what} cannot be stored as JSON: {exc}") from exc


def prepare_entry(
    decision: Mapping[str, Any],
    case_document: Mapping[str, Any],
    *,
    case_bytes: bytes | None = None,
    decision_bytes: bytes | None = None,
    case_bytes_sha256: str | None = None,
    compress: bool = True,
) -> PreparedEntry:
    """Validate a (decision, case document) pair and build its entry.

    ``compress=False`` leaves both documents as their canonical bytes, for
    :func:`compress_entries` to compress with others; such an entry is
    refused by :meth:`AuditTrail.record_prepared` until it is.

    ``case_bytes``/``decision_bytes``, when the caller already has them,
    must be the canonical bytes of the two documents (as
    :func:`calfrehab.engine.canonical.canonical_bytes` makes them); they
    spare serialising a document twice. ``case_bytes_sha256``, with
    ``case_bytes``, is their sha256 (hex) when the caller already took it
    (:func:`calfrehab.engine.pipeline.decide` hashes them for the decision's
    ``case_sha256``), so the case is hashed once. Raises AuditError on an invalid
    pair: no decision_id, a bad review_date, no rulebase, or a case whose
    case_id/review_date differ from the decision's.
    """
    if not isinstance(decision, Mapping):
        raise AuditError("decision document must be a JSON object")
    if not isinstance(case_document, Mapping):
        raise AuditError("case document must be a JSON object")
    decision_id = _required_str(decision, "decision_id", "decision document")
    what = f"decision {decision_id}"
    case_id = _required_str(decision, "case_id", what)
    review_date = checked_date(decision.get("review_date"), f"{what}: review_date")
    rulebase = decision.get("rulebase")
    if not isinstance(rulebase, Mapping):
        raise AuditError(f"{what} has no rulebase {{version, sha256}}")
    rulebase_version = _required_str(rulebase, "version", f"{what}: rulebase")
    rulebase_sha256 = _required_str(rulebase, "sha256", f"{what}: rulebase")
    engine_version = decision.get("engine_version", "")
    if not isinstance(engine_version, str):
        raise AuditError(f"{what}: engine_version must be a string")
    # A batch that pairs a decision with the wrong case would leave a trail
    # that is consistent and wrong; the case file carries the same two keys,
    # so compare them when it does.
    for key in ("case_id", "review_date"):
        if key in case_document and case_document[key] != decision[key]:
            raise AuditError(
                f"{what} is for {key} {decision[key]!r} but the case document "
                f"has {case_document[key]!r}"
            )
    case_raw = (
        case_bytes
        if case_bytes is not None
        else to_canonical(case_document, f"case document of {what}")
    )
    decision_raw = (
        decision_bytes
        if decision_bytes is not None
        else to_canonical(decision, f"decision document {decision_id}")
    )
    case_body_sha = (
        case_bytes_sha256
        if case_bytes is not None and case_bytes_sha256 is not None
        else sha256_hex(case_raw)
    )
    digest = decision.get("case_sha256")
    if digest is None:
        digest = case_body_sha
    elif not isinstance(digest, str) or not digest:
        raise AuditError(f"{what}: case_sha256 must be a non-empty string")
    return PreparedEntry(
        decision_id=decision_id,
        case_id=case_id,
        case_sha256=digest,
        review_date=review_date,
        rulebase_version=rulebase_version,
        rulebase_sha256=rulebase_sha256,
        engine_version=engine_version,
        case_body_sha256=case_body_sha,
        case_body=codec.compress("case", case_raw) if compress else case_raw,
        decision_body_sha256=sha256_hex(decision_raw),
        decision_body=codec.compress("decision", decision_raw) if compress else decision_raw,
    )


def is_compressed(entry: PreparedEntry) -> bool:
    """Whether ``entry``'s documents are compressed (ready to record). A
    canonical JSON object starts with ``{``, which neither a zstd document
    nor a zlib stream does."""
    return entry.case_body[:1] != b"{" and entry.decision_body[:1] != b"{"


def compress_entries(entries: list[PreparedEntry]) -> list[PreparedEntry]:
    """``entries`` (prepared with ``compress=False``) with their documents
    compressed: every case first, then every decision, so that each
    compressor's tables and dictionary stay in the caches from one
    document to the next. Measured inside a worker (thread CPU, chunks of
    64 decided then compressed, interleaved with chunks compressed case by
    case): compressing added 22-31 us to a case instead of 57-63."""
    # codec.compress looked up at each call, not bound once: a benchmark
    # stands in for it (benchmarks/run.py).
    cases = [
        entry.case_body if is_compressed(entry) else codec.compress("case", entry.case_body)
        for entry in entries
    ]
    decisions = [
        entry.decision_body if is_compressed(entry)
        else codec.compress("decision", entry.decision_body)
        for entry in entries
    ]
    return [
        entry._replace(case_body=case, decision_body=decision)
        for entry, case, decision in zip(entries, cases, decisions, strict=True)
    ]
