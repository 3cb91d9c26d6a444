"""Signed checkpoints of the trail and inclusion proofs, in the manner of
Certificate Transparency's signed tree heads (RFC 6962 §3.5, RFC 9162).

A **checkpoint** says "this trail, created at T0, had N entries whose
Merkle tree hash (:mod:`.merkle`) is R and whose last entry hash is L, at
time T", signed with the clinic's Ed25519 key. Kept outside the trail (a
file the records officer holds, a checkpoint log, an e-mail), it turns the
hash chain's blind spot into a check: a trail cut short (fewer than N
entries), rewritten or forked (its first N entries hash to another root)
since the checkpoint fails ``audit verify --checkpoint``. An **inclusion
proof** (``audit prove``) lets an auditor who holds a checkpoint check that
one entry is in the trail the checkpoint signs, without the trail.

The signed message is ``b"calfrehab-audit-checkpoint\\n"`` followed by the
canonical JSON of the checkpoint without its ``signature``. Keys are
Ed25519 (RFC 8032) through the ``cryptography`` package: PKCS#8 PEM for
the private key (owner-only), SubjectPublicKeyInfo PEM for the public one.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from calfrehab.engine.canonical import canonical_bytes, canonical_json, sha256_hex
from calfrehab.engine.clock import utc_now, utc_stamp
from calfrehab.engine.errors import OutputError
from calfrehab.engine.safeio import atomic_write_text, shown
from calfrehab.engine.trail import merkle
from calfrehab.engine.trail.audit import AuditTrail
from calfrehab.engine.trail.chain import entry_hash
from calfrehab.engine.trail.errors import AuditError
from calfrehab.engine.trail.schema import ENTRY_COLUMNS, GENESIS_HASH, HASHED_COLUMNS

__all__ = [
    "CHECKPOINT_FORMAT",
    "PROOF_FORMAT",
    "CheckpointCheck",
    "check_checkpoints",
    "check_proof",
    "generate_key",
    "key_id",
    "load_private_key",
    "load_public_key",
    "make_checkpoint",
    "prove",
    "read_checkpoints",
    "write_checkpoint",
]

CHECKPOINT_FORMAT: Final = "calfrehab-audit-checkpoint"
PROOF_FORMAT: Final = "calfrehab-audit-inclusion-proof"
_SIGNED_PREFIX: Final = b"calfrehab-audit-checkpoint\n"
# A checkpoint log line or a key file is small; anything much larger is not one.
_MAX_FILE_BYTES: Final = 64 * 1024 * 1024
_CHECKPOINT_KEYS: Final = frozenset(
    {"format", "format_version", "trail_created_at", "tree_size", "root_hash", "last_hash",
     "timestamp", "key_id", "public_key", "signature"}
)


# ------------------------------------------------------------------- keys


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    """sha256 of the raw public key, hex: how a checkpoint names its key."""
    return sha256_hex(_raw_public(key))


def _write_new(path: Path, text: str, mode: int) -> None:
    # O_EXCL: a key is never replaced (a lost private key is a lost
    # signer; a replaced one silently invalidates every checkpoint).
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise OutputError(f"refusing to write {shown(path)}: it exists (a key is never "
                          "replaced; choose another file)") from None
    except OSError as exc:
        raise OutputError(f"cannot write {shown(path)}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(path, mode)  # whatever the umask


def generate_key(path: str | os.PathLike[str]) -> tuple[Path, Path, str]:
    """A new Ed25519 key pair: the private key at ``path`` (PKCS#8 PEM,
    readable and writable by its owner only), the public key at
    ``path.pub``. Neither file may exist. Returns both paths and the key id."""
    private_path = Path(path)
    public_path = private_path.with_name(private_path.name + ".pub")
    for p in (private_path, public_path):
        if os.path.lexists(p):
            raise OutputError(f"refusing to write {shown(p)}: it exists (a key is never "
                              "replaced; choose another file)")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode("ascii")
    public = key.public_key()
    pub_pem = public.public_bytes(serialization.Encoding.PEM,
                                  serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")
    _write_new(private_path, pem, 0o600)
    _write_new(public_path, pub_pem, 0o644)
    return private_path, public_path, key_id(public)


def _read_small(path: Path, what: str) -> bytes:
    try:
        st = os.stat(path)
    except OSError as exc:
        raise AuditError(f"cannot read {what} {shown(path)}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise AuditError(f"{what} {shown(path)} is not a regular file")
    if st.st_size > _MAX_FILE_BYTES:
        raise AuditError(f"{what} {shown(path)} is too large to be one")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise AuditError(f"cannot read {what} {shown(path)}: {exc.strerror or exc}") from None


def load_private_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """The clinic's signing key. Refused when other users may read it (as
    OpenSSH refuses such a key): a key others can read signs for anyone."""
    p = Path(path)
    data = _read_small(p, "key file")
    if os.name == "posix" and os.stat(p).st_mode & 0o077:
        raise AuditError(f"key file {shown(p)} may be read by other users; "
                         f"`chmod 600 {shown(p)}` it")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise AuditError(f"key file {shown(p)} is not an unencrypted PEM private key "
                         f"({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise AuditError(f"key file {shown(p)} is not an Ed25519 key")
    return key


def load_public_key(path: str | os.PathLike[str]) -> Ed25519PublicKey:
    """A public key to pin: PEM, or the base64 of the raw 32 bytes (as a
    checkpoint's ``public_key`` holds it)."""
    p = Path(path)
    data = _read_small(p, "public key file").strip()
    try:
        if data.startswith(b"-----BEGIN"):
            key = serialization.load_pem_public_key(data)
            if not isinstance(key, Ed25519PublicKey):
                raise ValueError("not an Ed25519 key")
            return key
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(data, validate=True))
    except (ValueError, TypeError, binascii.Error) as exc:
        raise AuditError(f"public key file {shown(p)} is not an Ed25519 public key "
                         f"({exc})") from None


# ------------------------------------------------------------ checkpoints


def _leaves(trail: AuditTrail, start: int, end: int) -> Iterator[bytes]:
    """The leaf data of entries start+1..end (seq), in order."""
    conn = trail._connection()
    cur = conn.execute(
        "SELECT seq, entry_hash FROM entries WHERE seq > ? AND seq <= ? ORDER BY seq",
        (start, end),
    )
    expected = start + 1
    for seq, value in cur:
        if seq != expected or not isinstance(value, str):
            raise AuditError(f"entry seq {expected} is missing or corrupt; run audit verify")
        try:
            yield bytes.fromhex(value)
        except ValueError:
            raise AuditError(f"entry seq {seq} has a corrupt entry_hash; run audit verify") \
                from None
        expected += 1
    if expected != end + 1:
        raise AuditError(f"the trail has no entry seq {expected}; run audit verify")


def _signed_bytes(doc: Mapping[str, Any]) -> bytes:
    return _SIGNED_PREFIX + canonical_bytes({k: v for k, v in doc.items() if k != "signature"})


def _trail_created_at(trail: AuditTrail) -> str:
    row = trail._connection().execute(
        "SELECT value FROM meta WHERE key = 'created_at'").fetchone()
    return str(row[0]) if row is not None else ""


@contextlib.contextmanager
def _read_snapshot(trail: AuditTrail) -> Iterator[None]:
    """One read transaction (one consistent state of the trail while others
    append); inside one already, that one."""
    conn = trail._connection()
    if conn.in_transaction:
        yield
        return
    with trail._errors("read it"):
        conn.execute("BEGIN")
        try:
            yield
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")


def make_checkpoint(trail: AuditTrail, key: Ed25519PrivateKey,
                    now: datetime | None = None) -> dict[str, Any]:
    """A signed checkpoint of the trail as it stands (one read snapshot)."""
    with _read_snapshot(trail):
        count, last = trail.head()
        root = merkle.tree_hash(_leaves(trail, 0, count))
        created = _trail_created_at(trail)
    public = key.public_key()
    doc: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "format_version": 1,
        "trail_created_at": created,
        "tree_size": count,
        "root_hash": root.hex(),
        "last_hash": last,
        "timestamp": utc_stamp(now or utc_now()),
        "key_id": key_id(public),
        "public_key": _b64(_raw_public(public)),
    }
    doc["signature"] = _b64(key.sign(_signed_bytes(doc)))
    return doc


def write_checkpoint(
    trail_path: str | os.PathLike[str],
    key_path: str | os.PathLike[str],
    *,
    out: str | os.PathLike[str] | None = None,
    log: str | os.PathLike[str] | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Sign a checkpoint of the trail at ``trail_path`` with the key at
    ``key_path``; write it to ``out`` (atomically; an existing file only
    with ``force``) and/or append it as one line to the checkpoint log
    ``log`` (created owner-only). Returns the checkpoint. This is what
    ``audit checkpoint`` runs, and what ``batch`` (and a server, on its
    schedule) call."""
    key = load_private_key(key_path)
    if out is not None and os.path.lexists(out) and not force:
        raise OutputError(f"refusing to write {shown(out)}: it exists; give --force to "
                          "replace it, or append to a checkpoint log instead")
    with AuditTrail(trail_path, readonly=True) as trail:
        if trail.version < 3:
            raise AuditError(f"audit trail {trail.path} is in format version {trail.version}; "
                             "upgrade it with `calfrehab audit migrate` first")
        doc = make_checkpoint(trail, key)
    line = canonical_json(doc) + "\n"
    if out is not None:
        atomic_write_text(out, line)
    if log is not None:
        _append_line(Path(log), line)
    return doc


def _append_line(path: Path, line: str) -> None:
    # One write() of one line with O_APPEND: concurrent writers (a batch
    # and the clinician) never interleave within a line.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    except OSError as exc:
        raise OutputError(f"cannot write checkpoint log {shown(path)}: "
                          f"{exc.strerror or exc}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OutputError(f"checkpoint log {shown(path)} is not a regular file")
        os.write(fd, line.encode("utf-8"))
        os.fsync(fd)
    except OSError as exc:
        raise OutputError(f"cannot write checkpoint log {shown(path)}: "
                          f"{exc.strerror or exc}") from None
    finally:
        os.close(fd)


def read_checkpoints(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The checkpoints in a file: one checkpoint (a JSON object) or a log
    (one per line). Each is checked for shape and signature (by its own
    key; pinning the key is :func:`check_checkpoints`'s job)."""
    p = Path(path)
    text = _read_small(p, "checkpoint file").decode("utf-8", "replace")
    docs: list[Any] = []
    try:
        docs = [json.loads(text)]
    except ValueError:
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                docs.append(json.loads(line))
            except ValueError:
                raise AuditError(f"checkpoint file {shown(p)} line {n} is not JSON") from None
    if not docs:
        raise AuditError(f"checkpoint file {shown(p)} holds no checkpoint")
    for n, doc in enumerate(docs, 1):
        _check_signature(doc, f"checkpoint {n} of {shown(p)}")
    return [dict(d) for d in docs]


def _check_signature(doc: Any, what: str) -> Ed25519PublicKey:
    if not isinstance(doc, dict) or doc.get("format") != CHECKPOINT_FORMAT:
        raise AuditError(f"{what} is not a calfrehab audit checkpoint")
    if doc.get("format_version") != 1:
        raise AuditError(f"{what} has an unsupported format_version "
                         f"{doc.get('format_version')!r}")
    if set(doc) != _CHECKPOINT_KEYS:
        raise AuditError(f"{what} has keys {sorted(set(doc) ^ _CHECKPOINT_KEYS)} "
                         "missing or unknown")
    size = doc["tree_size"]
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise AuditError(f"{what}: tree_size must be a whole number")
    for k in ("root_hash", "last_hash", "key_id"):
        value = doc[k]
        if not isinstance(value, str) or len(value) != 64 or not _is_hex(value):
            raise AuditError(f"{what}: {k} must be 64 hex digits")
    try:
        public = Ed25519PublicKey.from_public_bytes(
            base64.b64decode(str(doc["public_key"]), validate=True))
        signature = base64.b64decode(str(doc["signature"]), validate=True)
    except (ValueError, binascii.Error):
        raise AuditError(f"{what}: public_key or signature is not base64 of a key") from None
    if key_id(public) != doc["key_id"]:
        raise AuditError(f"{what}: key_id does not name its public_key")
    try:
        public.verify(signature, _signed_bytes(doc))
    except InvalidSignature:
        raise AuditError(f"{what}: the signature does not verify: it was altered "
                         "after signing, or not signed by the key it names") from None
    return public


def _is_hex(value: str) -> bool:
    try:
        bytes.fromhex(value)
    except ValueError:
        return False
    return value == value.lower()


@dataclass(frozen=True, slots=True)
class CheckpointCheck:
    """The trail against its checkpoints: ``ok``, the first ``problem``,
    how many checkpoints were checked, and the latest one (its size and
    time) that the trail passes through."""

    ok: bool
    problem: str | None
    checked: int
    latest_size: int | None = None
    latest_time: str | None = None
    key_id: str | None = None


def check_checkpoints(
    trail: AuditTrail,
    checkpoints: Sequence[Mapping[str, Any]],
    pinned: Ed25519PublicKey | None = None,
) -> CheckpointCheck:
    """Whether the trail still holds what every checkpoint signed: the
    same trail (its ``created_at``), at least ``tree_size`` entries, the
    first ``tree_size`` of which hash to ``root_hash`` and end on
    ``last_hash``. One pass over the trail, however many checkpoints.
    With ``pinned``, each checkpoint must be signed by that key."""
    for n, doc in enumerate(checkpoints, 1):
        public = _check_signature(doc, f"checkpoint {n}")
        if pinned is not None and _raw_public(public) != _raw_public(pinned):
            return CheckpointCheck(False, f"checkpoint {n} is signed by key "
                                   f"{doc['key_id'][:16]}…, not the pinned key "
                                   f"{key_id(pinned)[:16]}…", n - 1)
    with _read_snapshot(trail):
        count, _ = trail.head()
        created = _trail_created_at(trail)
        sizes = [int(d["tree_size"]) for d in checkpoints]
        for n, doc in enumerate(checkpoints, 1):
            if doc["trail_created_at"] != created:
                return CheckpointCheck(
                    False, f"checkpoint {n} is of another trail (created "
                    f"{doc['trail_created_at']}; this one was created {created})", n - 1)
            if doc["tree_size"] > count:
                return CheckpointCheck(
                    False, f"the trail was cut short: checkpoint {n} ({doc['timestamp']}) "
                    f"signed {doc['tree_size']} entries, the trail has {count}", n - 1)
        top = max(sizes)
        _, roots = merkle.prefix_roots(_leaves(trail, 0, top), sizes)
        for n, doc in enumerate(checkpoints, 1):
            size = int(doc["tree_size"])
            last = trail.hash_at(size) if size else GENESIS_HASH
            if roots.get(size, b"").hex() != doc["root_hash"] or last != doc["last_hash"]:
                return CheckpointCheck(
                    False, f"the trail was rewritten or forked since checkpoint {n} "
                    f"({doc['timestamp']}): its first {size} entries are not those the "
                    "checkpoint signed", n - 1)
    latest = max(checkpoints, key=lambda d: (int(d["tree_size"]), str(d["timestamp"])))
    return CheckpointCheck(True, None, len(checkpoints), int(latest["tree_size"]),
                           str(latest["timestamp"]), str(latest["key_id"]))


# ----------------------------------------------------------------- proofs


def _entry_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    """The fields an entry's hash covers, as the proof carries them."""
    return {c: row.get(c) for c in (*HASHED_COLUMNS, "prev_hash") if c in row}


def prove(trail: AuditTrail, seq: int,
          checkpoint: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """An inclusion proof of entry ``seq`` in the tree the checkpoint signs
    (or, without one, the trail as it stands): the entry's hashed fields,
    the audit path, and the checkpoint, so an auditor checks it with
    :func:`check_proof` and nothing else."""
    if checkpoint is not None:
        _check_signature(checkpoint, "the checkpoint")
    with _read_snapshot(trail):
        count, _ = trail.head()
        size = int(checkpoint["tree_size"]) if checkpoint is not None else count
        if checkpoint is not None:
            check = check_checkpoints(trail, [checkpoint])
            if not check.ok:
                raise AuditError(f"cannot prove against this checkpoint: {check.problem}")
        if not 1 <= seq <= size:
            raise AuditError(f"entry seq {seq} is not among the {size} entries "
                             + ("the checkpoint signs" if checkpoint else "of the trail"))
        columns = ", ".join(c for c in ENTRY_COLUMNS if c != "decision_body")
        cur = trail._connection().execute(f"SELECT {columns} FROM entries WHERE seq = ?",
                                          (seq,))
        names = [d[0] for d in cur.description]
        found = cur.fetchone()
        if found is None:
            raise AuditError(f"entry seq {seq} is missing; run audit verify")
        row = dict(zip(names, found, strict=True))
        path = merkle.inclusion_proof(seq - 1, size,
                                      lambda a, b: _leaves(trail, a, b))
        root = merkle.root_from_inclusion(seq - 1, size, bytes.fromhex(row["entry_hash"]), path)
    return {
        "format": PROOF_FORMAT,
        "format_version": 1,
        "seq": seq,
        "tree_size": size,
        "entry_hash": row["entry_hash"],
        "entry": _entry_fields(row),
        "audit_path": [p.hex() for p in path],
        "root_hash": root.hex(),
        "checkpoint": dict(checkpoint) if checkpoint is not None else None,
    }


def check_proof(
    proof: Mapping[str, Any],
    checkpoint: Mapping[str, Any] | None = None,
    pinned: Ed25519PublicKey | None = None,
) -> dict[str, Any]:
    """Check an inclusion proof without the trail: the entry's fields hash
    to its ``entry_hash``, the audit path leads from it to the root, and a
    signed checkpoint (the one given, else the proof's own) signs that root
    for that tree size. Raises AuditError naming what fails; returns a
    summary when everything holds."""
    if not isinstance(proof, Mapping) or proof.get("format") != PROOF_FORMAT:
        raise AuditError("not a calfrehab audit inclusion proof")
    head = checkpoint if checkpoint is not None else proof.get("checkpoint")
    if head is None:
        raise AuditError("the proof carries no checkpoint: give the published checkpoint "
                         "it is to be checked against")
    public = _check_signature(head, "the checkpoint")
    if pinned is not None and _raw_public(public) != _raw_public(pinned):
        raise AuditError(f"the checkpoint is signed by key {head['key_id'][:16]}…, not the "
                         f"pinned key {key_id(pinned)[:16]}…")
    try:
        seq, size = int(proof["seq"]), int(proof["tree_size"])
        entry = dict(proof["entry"])
        path = [bytes.fromhex(str(p)) for p in proof["audit_path"]]
        leaf = str(proof["entry_hash"])
    except (KeyError, TypeError, ValueError):
        raise AuditError("the proof is malformed (seq, tree_size, entry, audit_path, "
                         "entry_hash)") from None
    if size != head["tree_size"]:
        raise AuditError(f"the proof is for a tree of {size} entries but the checkpoint "
                         f"signs {head['tree_size']}: prove against that checkpoint")
    if entry.get("seq") != seq:
        raise AuditError("the proof's entry is not the entry it names")
    try:
        recomputed = entry_hash(entry)
    except (KeyError, TypeError, ValueError) as exc:
        raise AuditError(f"the proof's entry fields are incomplete ({exc})") from None
    if recomputed != leaf:
        raise AuditError(f"entry seq {seq}: its fields do not hash to the entry_hash the "
                         "proof names: the entry was altered")
    try:
        root = merkle.root_from_inclusion(seq - 1, size, bytes.fromhex(leaf), path)
    except ValueError as exc:
        raise AuditError(f"the audit path does not fit the tree: {exc}") from None
    if root.hex() != head["root_hash"]:
        raise AuditError(f"entry seq {seq} is not in the trail the checkpoint signs: the "
                         "audit path leads to another root")
    return {
        "ok": True,
        "seq": seq,
        "kind": entry.get("kind"),
        "decision_id": entry.get("decision_id"),
        "case_id": entry.get("case_id"),
        "tree_size": size,
        "root_hash": head["root_hash"],
        "timestamp": head["timestamp"],
        "key_id": head["key_id"],
        "pinned": pinned is not None,
    }
