"""What the ``calfrehab audit`` commands show, as data: the rows of a
listing, one stored decision with its case and overrides, a replay of a
stored case under the current rules, and an atomic export to a file.

Everything here returns plain JSON-ready dicts (the ``--json`` output) and
leaves the text to the CLI. Reading never creates a trail: the functions
take an :class:`AuditTrail` opened with :func:`open_trail`. The writes
are :func:`override_decision` and :func:`accept_decision`: each opens the
trail once, writable, resolves the decision id from a prefix and appends
on that one connection (:func:`add_override` is the older form that takes
an open trail).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Any, Final, TextIO, cast

from calfrehab.engine.clock import utc_stamp
from calfrehab.engine.errors import CaseValidationError, OutputError
from calfrehab.engine.safeio import AtomicFile, check_outputs, shown
from calfrehab.engine.trail.audit import (
    AuditEntry,
    AuditError,
    AuditTrail,
    EntryKind,
    ExportFormat,
    Requester,
    VerifyReport,
    default_audit_path,
)
from calfrehab.engine.trail.migrate import DEFAULT_CHUNK, migrate
from calfrehab.engine.trail.shards import (
    is_shard_file,
    is_sharded,
    shard_path,
    verify_sharded,
)
from calfrehab.engine.vocabulary import TRACKS

__all__ = [
    "MIN_PREFIX",
    "accept_decision",
    "add_audit_override",
    "audit_check_proof",
    "audit_checkpoint",
    "audit_key_check",
    "audit_keygen",
    "audit_prove",
    "compare_decisions",
    "entry_summary",
    "export_audit",
    "find_decision",
    "integrity",
    "list_audit",
    "migrate_audit",
    "open_trail",
    "override_decision",
    "replay_decision",
    "show_decision",
    "verify_audit",
    "verify_trail",
]

# Where ``batch --dask`` puts the shards of ``--audit FILE``: ``FILE.shards/``.
SHARDS_SUFFIX: Final = ".shards"

# A prefix shorter than this is not looked up: "a" matching the one
# decision in a young trail would make a typo override the wrong decision
# later, once the trail has grown.
MIN_PREFIX: Final = 4


def open_trail(path: str | os.PathLike[str] | None) -> AuditTrail:
    """Open a trail that already exists, for reading only.

    :class:`AuditTrail` creates a new one for a missing or empty file, which
    is right for recording and wrong for reading: a mistyped ``--audit``
    would show an empty trail (and leave a stray database behind) instead
    of saying that nothing is there. Read-only (SQLite ``mode=ro``) also
    means a trail the user may not write can be read, and reading never
    changes the file (not even its journal mode)."""
    p = Path(path) if path is not None else default_audit_path()
    if not p.exists():
        raise AuditError(f"no audit trail at {p}: nothing has been recorded there")
    if is_sharded(p):
        raise AuditError(
            f"{p} is a sharded audit trail (one trail per batch partition): give one "
            f"shard's file, e.g. {shard_path(p, 0)}; `calfrehab audit verify --audit {p}` "
            "checks the whole"
        )
    if p.is_file() and p.stat().st_size == 0:
        raise AuditError(f"{p} is an empty file, not a calfrehab audit trail")
    return AuditTrail(p, readonly=True)


# ------------------------------------------------------------- lookups


def find_decision(trail: AuditTrail, ref: str) -> AuditEntry:
    """The decision entry whose id is ``ref`` or, failing that, starts with
    it (at least :data:`MIN_PREFIX` characters, matching one decision)."""
    ref = ref.strip()
    if not ref:
        raise AuditError("a decision id is required")
    with contextlib.suppress(AuditError):  # not an exact id: try it as a prefix
        return trail.get(ref)
    if len(ref) < MIN_PREFIX:
        raise AuditError(
            f"no decision {ref} in audit trail {trail.path} "
            f"(a prefix needs at least {MIN_PREFIX} characters)"
        )
    matches = trail.decision_ids(ref)
    if not matches:
        raise AuditError(f"no decision {ref} in audit trail {trail.path}")
    if len(matches) > 1:
        shown = ", ".join(f"{d} (case {c})" for d, c in matches[:5])
        more = f" and {len(matches) - 5} more" if len(matches) > 5 else ""
        raise AuditError(
            f"decision id prefix {ref} matches {len(matches)} decisions: {shown}{more}; "
            "give more of the id"
        )
    return trail.get(matches[0][0])


def _tracks(decision: Mapping[str, Any]) -> dict[str, str | None]:
    # The engine owns the document; read it defensively so that an entry
    # written by another version still lists (with blanks) rather than fails.
    tracks = decision.get("tracks")
    out: dict[str, str | None] = {}
    for track in TRACKS:
        info = tracks.get(track) if isinstance(tracks, Mapping) else None
        value = info.get("decision") if isinstance(info, Mapping) else None
        out[track] = value if isinstance(value, str) else None
    return out


def entry_summary(entry: AuditEntry) -> dict[str, Any]:
    """The columns of an entry without its documents."""
    return {
        "seq": entry.seq,
        "entry_id": entry.entry_id,
        "kind": entry.kind,
        "recorded_at": utc_stamp(entry.recorded_at),
        "clinician": entry.clinician,
        "decision_id": entry.decision_id,
        "case_id": entry.case_id,
        "review_date": entry.review_date.isoformat(),
        "rulebase_version": entry.rulebase_version,
        "rulebase_sha256": entry.rulebase_sha256,
        "engine_version": entry.engine_version,
        "requester": entry.requester,
        "entry_hash": entry.entry_hash,
    }


def _override_view(entry: AuditEntry) -> dict[str, Any]:
    doc = entry.decision
    return {
        "seq": entry.seq,
        "entry_id": entry.entry_id,
        "recorded_at": utc_stamp(entry.recorded_at),
        "clinician": entry.clinician,
        "reason": doc.get("reason"),
        "track": doc.get("track"),
        "decision": doc.get("decision"),
        "prescriptions": doc.get("prescriptions"),
        "requester": entry.requester,
    }


def _accepted_view(entry: AuditEntry) -> dict[str, Any]:
    doc = entry.decision
    return {
        "seq": entry.seq,
        "entry_id": entry.entry_id,
        "recorded_at": utc_stamp(entry.recorded_at),
        "clinician": entry.clinician,
        "override_entry_id": doc.get("override_entry_id"),
        "program": doc.get("program"),
        "program_sha256": doc.get("program_sha256"),
        "requester": entry.requester,
    }


def list_audit(
    trail: AuditTrail,
    case_id: str | None = None,
    since: date | None = None,
    kind: EntryKind | None = None,
) -> list[dict[str, Any]]:
    """One row per entry, in recording order, for ``audit list``.

    A decision row carries its outcome, each track's decision and how many
    overrides it has (counted over the whole trail, whatever the filters);
    an override row carries the override (track, decision, reason).
    """
    entries = trail.entries(case_id=case_id, since=since, kind=kind)
    counts: dict[str, int] = {}
    if kind != "override" and entries:
        for o in trail.entries(case_id=case_id, kind="override"):
            counts[o.decision_id] = counts.get(o.decision_id, 0) + 1
    rows: list[dict[str, Any]] = []
    for e in entries:
        row = entry_summary(e)
        if e.kind == "decision":
            outcome = e.decision.get("outcome")
            row["outcome"] = outcome if isinstance(outcome, str) else None
            row["tracks"] = _tracks(e.decision)
            row["overrides"] = counts.get(e.decision_id, 0)
            row["overridden"] = row["overrides"] > 0
        elif e.kind == "override":
            row["override"] = {
                k: v
                for k, v in _override_view(e).items()
                if k in ("track", "decision", "reason", "prescriptions")
            }
        else:
            row["accepted"] = {
                k: v
                for k, v in _accepted_view(e).items()
                if k in ("override_entry_id", "program_sha256")
            }
        rows.append(row)
    return rows


# ---------------------------------------------------------------- show


def _obj(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _case_summary(doc: Mapping[str, Any]) -> dict[str, Any]:
    condition = _obj(doc.get("condition"))
    patient = _obj(doc.get("patient"))
    program = _obj(doc.get("program"))
    return {
        "case_id": doc.get("case_id"),
        "review_date": doc.get("review_date"),
        "condition": condition.get("kind"),
        "side": condition.get("side"),
        "irritability": condition.get("irritability"),
        "injury_date": condition.get("injury_date"),
        "management": condition.get("management"),
        "goal": patient.get("goal"),
        "red_flags": list(doc.get("red_flags") or []),
        "program": {t: program.get(t) for t in TRACKS},
        "sessions": len(doc.get("sessions") or []),
        "assessments": len(doc.get("assessments") or []),
    }


def _check_case(entry: AuditEntry) -> dict[str, Any]:
    """Rebuild the case the decision was made for and check it is the one
    the decision names (its case_sha256)."""
    from calfrehab.engine.canonical import case_sha256
    from calfrehab.engine.casefile.validation import validate_document

    doc = entry.case
    if doc is None:
        raise AuditError(f"audit entry seq {entry.seq} has no case document")
    errors: list[dict[str, object]] = []
    try:
        validate_document(doc, f"case of audit entry seq {entry.seq}")
    except CaseValidationError as exc:
        # The stored case is evidence as it stands; a case format that has
        # moved on since is reported, not fatal to showing the decision.
        errors = [e.as_dict() for e in exc.errors]
    sha = case_sha256(doc)
    return {
        "valid": not errors,
        "errors": errors,
        "sha256": sha,
        "sha256_matches": sha == entry.case_sha256,
        "summary": _case_summary(doc),
        "document": doc,
    }


def integrity(trail: AuditTrail, entries: Iterable[AuditEntry]) -> dict[str, Any]:
    """Whether the entries about to be shown or replayed can be trusted:
    each one's hashes, its links to its neighbours, and (for a decision)
    its documents against its columns (:meth:`AuditTrail.check_entry`).
    A cheap check of a few entries, not a whole-trail verify."""
    problems: list[str] = []
    for entry in entries:
        problems += trail.check_entry(entry.seq).problems
    return {"ok": not problems, "problems": problems}


def show_decision(trail: AuditTrail, ref: str) -> dict[str, Any]:
    """One stored decision as recorded, with its case and its overrides,
    and whether its entry (and theirs) checks out (``integrity``)."""
    entry = find_decision(trail, ref)
    overrides = trail.overrides_for(entry.decision_id)
    accepted = trail.accepted_for(entry.decision_id)
    decision = entry.decision
    rulebase = decision.get("rulebase")
    if not isinstance(rulebase, Mapping):
        rulebase = {}
    engine = _obj(decision.get("engine"))
    return {
        "entry": entry_summary(entry),
        "decision_id": entry.decision_id,
        "case_id": entry.case_id,
        "review_date": entry.review_date.isoformat(),
        "rulebase": {
            "name": rulebase.get("name"),
            "version": entry.rulebase_version,
            "sha256": entry.rulebase_sha256,
        },
        "engine": {
            "version": entry.engine_version,
            "durable_rules": engine.get("durable_rules"),
        },
        "integrity": integrity(trail, [entry, *overrides, *accepted]),
        "case": _check_case(entry),
        "decision": decision,
        "overrides": [_override_view(o) for o in overrides],
        "accepted": [_accepted_view(a) for a in accepted],
    }


# -------------------------------------------------------------- replay


def _prescription(rx: object) -> dict[str, Any] | None:
    if not isinstance(rx, Mapping):
        return None
    return {k: rx.get(k) for k in ("exercise", "load_kg", "sets", "reps")}


def _track_state(decision: Mapping[str, Any], track: str) -> dict[str, Any]:
    tracks = decision.get("tracks")
    info = tracks.get(track) if isinstance(tracks, Mapping) else None
    if not isinstance(info, Mapping):
        return {"decision": None, "next": None}
    return {"decision": info.get("decision"), "next": _prescription(info.get("next"))}


def _fired(decision: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    firings = decision.get("firings")
    for f in firings if isinstance(firings, list) else []:
        rule = f.get("rule") if isinstance(f, Mapping) else None
        if isinstance(rule, str) and rule not in out:
            out.append(rule)
    return out


def _rulebase(decision: Mapping[str, Any]) -> dict[str, Any]:
    rb = decision.get("rulebase")
    rb = rb if isinstance(rb, Mapping) else {}
    return {k: rb.get(k) for k in ("name", "version", "sha256")}


def compare_decisions(then: Mapping[str, Any], now: Mapping[str, Any]) -> dict[str, Any]:
    """Compare two decision documents for the same case.

    They are the *same decision* when the outcome and, per track, the
    decision and the proposed next prescription (exercise, load, sets,
    reps) agree. Reasons and firings may still differ; they are listed
    (rules that fired then but not now, and now but not then) either way.
    """
    tracks = []
    for track in TRACKS:
        a, b = _track_state(then, track), _track_state(now, track)
        tracks.append({"track": track, "then": a, "now": b, "same": a == b})
    fired_then, fired_now = _fired(then), _fired(now)
    rb_then, rb_now = _rulebase(then), _rulebase(now)
    outcome = {"then": then.get("outcome"), "now": now.get("outcome")}
    same = outcome["then"] == outcome["now"] and all(t["same"] for t in tracks)
    return {
        "same": same,
        "outcome": outcome,
        "tracks": tracks,
        "rulebase": {
            "then": rb_then,
            "now": rb_now,
            "changed": rb_then["sha256"] != rb_now["sha256"],
        },
        "engine_version": {"then": then.get("engine_version"), "now": now.get("engine_version")},
        "fired_then_not_now": [r for r in fired_then if r not in fired_now],
        "fired_now_not_then": [r for r in fired_now if r not in fired_then],
    }


def replay_decision(trail: AuditTrail, ref: str, rules_dir: Path | None = None) -> dict[str, Any]:
    """Decide a stored case again with the rules in ``rules_dir`` (default:
    the shipped rules) and compare with what was decided then. Nothing is
    recorded. The entry is checked first (``integrity``): a replay of a
    tampered entry says so rather than passing its case off as recorded."""
    from calfrehab.engine import pipeline
    from calfrehab.engine.casefile.validation import validate_document

    entry = find_decision(trail, ref)
    checked = integrity(trail, [entry])
    if entry.case is None:
        raise AuditError(f"audit entry seq {entry.seq} has no case document to replay")
    reasoner = pipeline.prepare(rules_dir)
    case = validate_document(entry.case, f"case {entry.case_id} (audit entry seq {entry.seq})")
    now = pipeline.decide(case, entry.case, reasoner).decision.model_dump(mode="json")
    return {
        "entry": entry_summary(entry),
        "decision_id": entry.decision_id,
        "case_id": entry.case_id,
        "review_date": entry.review_date.isoformat(),
        "integrity": checked,
        **compare_decisions(entry.decision, now),
        "decision_now": now,
    }


# ------------------------------------------------------ verify, override


def verify_audit(
    path: str | os.PathLike[str] | None,
    shard: int | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    public_key: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Verify the trail at ``path``: one file, or a sharded trail's
    directory whole (its manifest and every shard), or with ``shard`` one
    shard of it alone. The result has :func:`verify_trail`'s keys, plus
    ``sharded`` and, for a sharded trail, ``manifest_head``, ``shards``
    (per partition) and ``bad_shard``.

    ``path`` may also be the trail file given to ``batch --dask``, whose
    shards live beside it in ``<file>.shards/``: then that directory is
    checked, and the file too when it exists (``trail`` in the result).

    ``checkpoint`` (a checkpoint file or a checkpoint log) also checks that
    the trail still holds what every checkpoint in it signed (``checkpoint``
    in the result); ``public_key`` pins the key they must be signed with."""
    given = Path(path) if path is not None else default_audit_path()
    p = given if is_sharded(given) else given.with_name(given.name + SHARDS_SUFFIX)
    if not is_sharded(p):
        if shard is not None:
            raise AuditError(
                f"{given} is not a sharded audit trail, so it has no shard {shard}"
            )
        with open_trail(given) as trail:
            out = {**verify_trail(trail), "sharded": False}
            if checkpoint is not None:
                out["checkpoint"] = _checkpoint_summary(trail, checkpoint, public_key)
                if out["ok"] and not out["checkpoint"]["ok"]:
                    out["ok"] = False
            return out
    if checkpoint is not None:
        raise AuditError(f"{p} is a sharded audit trail: a checkpoint signs one trail file "
                         "(check a shard with --audit and its file)")
    report = verify_sharded(p, shard)
    out = {
        "path": str(p),
        "sharded": True,
        "ok": report.ok,
        "entries_checked": report.entries_checked,
        "problem": report.problem,
        "manifest_head": report.head,
        "bad_shard": report.bad_partition,
        "shards": {
            str(n): {
                "ok": r.ok,
                "entries_checked": r.entries_checked,
                "first_bad_seq": r.first_bad_seq,
                "problem": r.problem,
                "last_hash": r.last_hash,
            }
            for n, r in sorted(report.shards.items())
        },
    }
    if p != given and given.exists() and shard is None:
        with open_trail(given) as trail:
            summary = verify_trail(trail)
        out["trail"] = summary
        out["entries_checked"] += summary["entries_checked"]
        if not summary["ok"] and out["ok"]:
            out["ok"] = False
            out["problem"] = f"audit trail {given}: {summary['problem']}"
    return out


def _checkpoint_summary(
    trail: AuditTrail,
    checkpoint: str | os.PathLike[str],
    public_key: str | os.PathLike[str] | None,
) -> dict[str, Any]:
    from calfrehab.engine.trail import checkpoint as cp

    pinned = cp.load_public_key(public_key) if public_key is not None else None
    result = cp.check_checkpoints(trail, cp.read_checkpoints(checkpoint), pinned)
    return {
        "ok": result.ok,
        "problem": result.problem,
        "file": str(checkpoint),
        "checked": result.checked,
        "latest_size": result.latest_size,
        "latest_time": result.latest_time,
        "key_id": result.key_id,
        "pinned": pinned is not None,
    }


def audit_keygen(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A new Ed25519 key pair for signing checkpoints: the private key at
    ``path`` (owner-only), the public key at ``path.pub``."""
    from calfrehab.engine.trail.checkpoint import generate_key

    private, public, kid = generate_key(path)
    return {"private_key": str(private), "public_key": str(public), "key_id": kid}


def audit_key_check(key: str | os.PathLike[str]) -> str:
    """The key id of the signing key at ``key``, or AuditError saying why
    it cannot sign (checked before a long batch, not after it)."""
    from calfrehab.engine.trail.checkpoint import key_id, load_private_key

    return key_id(load_private_key(key).public_key())


def audit_checkpoint(
    path: str | os.PathLike[str] | None,
    key: str | os.PathLike[str],
    *,
    out: str | os.PathLike[str] | None = None,
    log: str | os.PathLike[str] | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Sign a checkpoint of the trail at ``path`` (which must exist) with
    the key at ``key``; write it to ``out`` and/or append it to the
    checkpoint log ``log``. Returns the checkpoint. The call ``batch``
    makes after its run, and a server on its schedule."""
    from calfrehab.engine.trail.checkpoint import write_checkpoint

    p = Path(path) if path is not None else default_audit_path()
    if is_sharded(p):
        raise AuditError(f"{p} is a sharded audit trail: checkpoint its trail file, or each "
                         "shard's file")
    if out is not None:
        check_outputs([Path(out)], trail=p)
    if log is not None:
        check_outputs([Path(log)], trail=p)
    with open_trail(p):  # one that exists and is a trail, or a clean error
        pass
    return write_checkpoint(p, key, out=out, log=log, force=force)


def _entry_seq(trail: AuditTrail, ref: str) -> int:
    """An entry named by its seq, its entry id, or its decision's id (or a
    unique prefix of it, as everywhere)."""
    ref = ref.strip()
    if ref.isdigit():
        return int(ref)
    with contextlib.suppress(AuditError):
        return find_decision(trail, ref).seq
    for entry in trail.entries():
        if entry.entry_id == ref:
            return entry.seq
    raise AuditError(f"no entry {ref} in audit trail {trail.path} (give a seq, an entry id "
                     "or a decision id)")


def audit_prove(
    trail: AuditTrail,
    ref: str,
    checkpoint: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """An inclusion proof of one entry (seq, entry id or decision id) in
    the tree the checkpoint signs (the latest of a log), or in the trail as
    it stands without one."""
    from calfrehab.engine.trail import checkpoint as cp

    head = None
    if checkpoint is not None:
        heads = cp.read_checkpoints(checkpoint)
        head = max(heads, key=lambda d: (int(d["tree_size"]), str(d["timestamp"])))
    return cp.prove(trail, _entry_seq(trail, ref), head)


def audit_check_proof(
    proof: str | os.PathLike[str],
    checkpoint: str | os.PathLike[str] | None = None,
    public_key: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Check an inclusion proof file without the trail, against the
    checkpoint it carries or the one given (the latest of a log whose
    size matches), pinned to ``public_key`` when given."""
    import json

    from calfrehab.engine.safeio import read_input_bytes
    from calfrehab.engine.trail import checkpoint as cp

    try:
        document = json.loads(read_input_bytes(proof, cap_bytes=64 * 1024 * 1024))
    except ValueError:
        raise AuditError(f"{proof} is not JSON, so not an inclusion proof") from None
    head = None
    if checkpoint is not None:
        heads = cp.read_checkpoints(checkpoint)
        size = document.get("tree_size") if isinstance(document, dict) else None
        matching = [h for h in heads if h["tree_size"] == size]
        head = matching[-1] if matching else heads[-1]
    pinned = cp.load_public_key(public_key) if public_key is not None else None
    return cp.check_proof(document, head, pinned)


def migrate_audit(
    path: str | os.PathLike[str] | None, chunk: int = DEFAULT_CHUNK, vacuum: bool = True
) -> dict[str, Any]:
    """Upgrade the trail at ``path`` to the current format, in place
    (:func:`calfrehab.engine.trail.migrate.migrate`)."""
    p = Path(path) if path is not None else default_audit_path()
    if is_sharded(p):
        raise AuditError(f"{p} is a sharded trail; its shards are written in the current format")
    if chunk < 1:
        raise AuditError(f"--chunk must be at least 1, got {chunk}")
    report = migrate(p, chunk=chunk, vacuum=vacuum)
    return {
        "path": report.path,
        "from_version": report.from_version,
        "to_version": report.to_version,
        "migrated": report.from_version != report.to_version,
        "indexes_updated": report.indexes_updated,
        "entries": report.entries,
        "resumed_at": report.resumed_at,
        "v1_last_hash": report.v1_last_hash,
        "last_hash": report.last_hash,
        "bytes_before": report.bytes_before,
        "bytes_after": report.bytes_after,
    }


def verify_trail(trail: AuditTrail) -> dict[str, Any]:
    report: VerifyReport = trail.verify()
    return {
        "path": str(trail.path),
        "ok": report.ok,
        "entries_checked": report.entries_checked,
        "first_bad_seq": report.first_bad_seq,
        "problem": report.problem,
        "last_hash": report.last_hash,
    }


def add_audit_override(
    trail: AuditTrail,
    ref: str,
    clinician: str,
    reason: str,
    track: str | None = None,
    decision: str | None = None,
    *,
    prescriptions: Mapping[str, Mapping[str, Any] | None] | None = None,
    requester: Requester | Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Record a clinician's override of a stored decision (id or prefix)
    on an open trail. Given a read-only trail (as :func:`open_trail`
    opens it), the override is written by :func:`override_decision`, on
    one writable connection of its own; prefer calling that directly."""
    if trail.readonly:
        return override_decision(
            trail.path, ref, clinician, reason, track, decision,
            prescriptions=prescriptions, requester=requester,
        )
    target = find_decision(trail, ref)
    entry = trail.override(
        target.decision_id, clinician, reason, track, decision,
        prescriptions=prescriptions, requester=requester,
    )
    return {**entry_summary(entry), "override": _override_view(entry)}


def _writable_existing(path: str | os.PathLike[str] | None) -> AuditTrail:
    """The one writable connection of a write to a trail that must exist
    already (an override or an acceptance never creates a trail)."""
    p = Path(path) if path is not None else default_audit_path()
    if is_sharded(p) or is_shard_file(p):
        raise AuditError(
            f"{p} is part of a sharded audit trail (one trail per batch partition): a shard "
            "is vouched for by its manifest, so it takes no overrides or acceptances; record "
            "them in the trail the batch was given (--audit FILE)"
        )
    return AuditTrail(p, create=False)


def override_decision(
    path: str | os.PathLike[str] | None,
    ref: str,
    clinician: str,
    reason: str,
    track: str | None = None,
    decision: str | None = None,
    *,
    prescriptions: Mapping[str, Mapping[str, Any] | None] | None = None,
    requester: Requester | Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Record a clinician's override of a stored decision (id or unique
    prefix) in the trail at ``path``, which must exist: one writable
    connection, opened for this write, resolves the id and appends
    (``BEGIN IMMEDIATE``, busy timeout). ``prescriptions`` is the
    clinician's own prescription per track (see
    :meth:`AuditTrail.override`). Returns the entry as :func:`show` lists
    an override, with the entry's columns."""
    with _writable_existing(path) as trail:
        target = find_decision(trail, ref)
        entry = trail.override(
            target.decision_id, clinician, reason, track, decision,
            prescriptions=prescriptions, requester=requester,
        )
        return {**entry_summary(entry), "override": _override_view(entry)}


def accept_decision(
    path: str | os.PathLike[str] | None,
    ref: str,
    program: Mapping[str, Any],
    clinician: str | None = None,
    *,
    override_entry_id: str | None = None,
    requester: Requester | Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Record that a stored decision (id or unique prefix), or the override
    ``override_entry_id`` of it, was applied to the case file, whose
    programme is now ``program`` (:meth:`AuditTrail.accept`), in the trail
    at ``path``, which must exist; one writable connection. Returns the
    entry with its columns and ``accepted`` (``program_sha256`` among
    them)."""
    with _writable_existing(path) as trail:
        target = find_decision(trail, ref)
        entry = trail.accept(
            target.decision_id, program, clinician,
            override_entry_id=override_entry_id, requester=requester,
        )
        return {**entry_summary(entry), "accepted": _accepted_view(entry)}


# -------------------------------------------------------------- export


def export_audit(trail: AuditTrail, fmt: ExportFormat, out: str | os.PathLike[str]) -> int:
    """Export the trail to ``out`` atomically, through the one atomic writer
    (:mod:`calfrehab.engine.safeio`): a temporary file in the same directory,
    flushed to disk, then renamed over ``out``, so a reader (or a crash)
    never sees half an export. ``out`` may not be the trail (or its
    ``-wal``/``-shm``), a device, a special file or a symlink. Returns the
    number of entries written. The file is created readable by its owner
    only: it holds patient data."""
    target = Path(out)
    if fmt not in ("jsonl", "csv"):
        raise AuditError(f"unknown export format {fmt!r}; use jsonl or csv")
    check_outputs([target], trail=trail.path)
    # newline="": the csv writer ends rows in "\n" itself; no translation.
    with AtomicFile(target, mode=0o600, text=True, newline="") as fh:
        try:
            written: int = trail.export(fmt, cast(TextIO, fh.fh))
        except OSError as exc:
            raise OutputError(f"cannot write export {shown(target)}: "
                              f"{exc.strerror or exc}") from None
    return written
