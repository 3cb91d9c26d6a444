"""A sharded audit trail: one hash-chained trail per batch partition, and a
manifest that chains the shards' heads.

A batch spread over a cluster (Dask) records from many processes on many
machines at once; one SQLite file cannot take that (its write lock is one
machine's, and one writer at a time). So each partition writes its own
shard, an ordinary format-2 trail with its own chain, and when the run
ends :func:`write_manifest` records every shard's head (entry count and
last hash) in ``manifest.json``, each link hashed with the one before it:

    link_hash = sha256(prev_link + canonical_json({partition, file,
                                                  entry_count, last_hash,
                                                  prev_link}))

the first ``prev_link`` being 64 zeros, the shards in partition order.
The manifest's ``head`` (the last link) stands for the whole run: write it
down as you would a single trail's last hash.

Layout of the directory::

    manifest.json
    shard-00000.sqlite3
    shard-00001.sqlite3
    ...

:func:`verify_sharded` checks the whole: the manifest's own chain, every
shard's chain, each shard's head against the manifest, and that no shard
is missing or extra. With ``partition`` it checks one shard alone (its
chain, and its head against the manifest when there is one), so a shard
copied elsewhere, or one partition of a huge run, can be checked without
the rest.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from calfrehab.engine.canonical import canonical_bytes, canonical_json, sha256_hex
from calfrehab.engine.clock import Clock, utc_now, utc_stamp
from calfrehab.engine.safeio import atomic_write_text
from calfrehab.engine.trail.audit import AuditTrail
from calfrehab.engine.trail.chain import VerifyReport
from calfrehab.engine.trail.errors import AuditError
from calfrehab.engine.trail.schema import GENESIS_HASH

__all__ = [
    "MANIFEST_FORMAT",
    "MANIFEST_NAME",
    "Manifest",
    "ShardHead",
    "ShardedVerifyReport",
    "is_shard_file",
    "is_sharded",
    "open_shard",
    "read_manifest",
    "shard_path",
    "verify_sharded",
    "write_manifest",
]

MANIFEST_NAME: Final = "manifest.json"
MANIFEST_FORMAT: Final = "calfrehab-audit-manifest"
MANIFEST_VERSION: Final = 1
_SHARD_FILE: Final = re.compile(r"^shard-(\d{5,})\.sqlite3$")
# A partition number is a file name part; keep it a plain, bounded integer.
MAX_PARTITION: Final = 10_000_000


@dataclass(frozen=True, slots=True)
class ShardHead:
    """One shard's line in the manifest."""

    partition: int
    file: str
    entry_count: int
    last_hash: str
    prev_link: str
    link_hash: str


@dataclass(frozen=True, slots=True)
class Manifest:
    shards: tuple[ShardHead, ...]
    head: str
    written_at: str


@dataclass(frozen=True, slots=True)
class ShardedVerifyReport:
    """Result of :func:`verify_sharded`. ``shards`` maps each partition
    checked to its own report; ``problem`` is the first thing wrong with
    the whole (the manifest, a missing or extra shard, a head that differs),
    or the first shard's problem."""

    ok: bool
    entries_checked: int
    problem: str | None
    head: str | None
    shards: dict[int, VerifyReport] = field(default_factory=dict)
    bad_partition: int | None = None


def _partition(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < MAX_PARTITION:
        raise AuditError(f"a shard partition is an integer from 0 to {MAX_PARTITION - 1}")
    return value


def shard_path(directory: str | os.PathLike[str], partition: int) -> Path:
    """The file of one partition's shard."""
    return Path(directory) / f"shard-{_partition(partition):05d}.sqlite3"


def is_sharded(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a sharded trail's directory."""
    p = Path(path)
    return p.is_dir() and (
        (p / MANIFEST_NAME).exists() or any(_SHARD_FILE.match(c.name) for c in p.iterdir())
    )


def is_shard_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is one shard of a sharded trail (named as a shard,
    in a directory with a manifest or other shards)."""
    p = Path(path)
    return bool(_SHARD_FILE.match(p.name)) and is_sharded(p.parent)


def open_shard(
    directory: str | os.PathLike[str], partition: int, *, clock: Clock | None = None
) -> AuditTrail:
    """Open (creating if need be) the shard of one partition, for
    recording. Call from the process that runs the partition; record with
    :meth:`AuditTrail.record_prepared` as into any trail."""
    path = shard_path(directory, partition)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AuditError(f"cannot create the sharded trail directory {path.parent}: {exc}") from exc
    return AuditTrail(path, clock=clock)


def _shard_files(directory: Path) -> dict[int, Path]:
    found: dict[int, Path] = {}
    for child in directory.iterdir():
        match = _SHARD_FILE.match(child.name)
        if match:
            found[int(match.group(1))] = child
    return found


def _link(prev_link: str, partition: int, file: str, count: int, last_hash: str) -> str:
    body = {
        "partition": partition,
        "file": file,
        "entry_count": count,
        "last_hash": last_hash,
        "prev_link": prev_link,
    }
    return sha256_hex(prev_link.encode("utf-8") + canonical_bytes(body))


def write_manifest(
    directory: str | os.PathLike[str], *, verify: bool = True, clock: Clock | None = None,
    written: Mapping[int, tuple[int, str]] | None = None,
) -> Manifest:
    """Record every shard's head in ``manifest.json``, chained, replacing
    the manifest atomically. With ``verify`` (the default) each shard is
    verified first and a shard that fails stops the manifest being written:
    a manifest vouches for what it lists.

    ``written`` names the shards the calling run has just recorded, each
    with the head (entry count, last hash) its writer reported after its
    transaction committed. Such a shard is checked against that head (two
    lookups) rather than read whole: its writer computed every link of it a
    moment ago, and re-reading all of it in one process would make a
    cluster's batch end in a single-process pass over the whole trail.
    ``calfrehab audit verify`` still reads every entry."""
    root = Path(directory)
    if not root.is_dir():
        raise AuditError(f"no sharded audit trail at {root}")
    reported = dict(written or {})
    heads: list[ShardHead] = []
    prev = GENESIS_HASH
    for partition, path in sorted(_shard_files(root).items()):
        with AuditTrail(path, readonly=True) as shard:
            count, last_hash = shard.head()
            if partition in reported:
                if (count, last_hash) != reported.pop(partition):
                    raise AuditError(
                        f"shard {path.name} does not end where its writer left it; "
                        "no manifest written"
                    )
            elif verify:
                report = shard.verify()
                if not report.ok:
                    raise AuditError(
                        f"shard {path.name} does not verify ({report.problem}); "
                        "no manifest written"
                    )
        link = _link(prev, partition, path.name, count, last_hash)
        heads.append(ShardHead(partition, path.name, count, last_hash, prev, link))
        prev = link
    if reported:
        missing = ", ".join(str(p) for p in sorted(reported))
        raise AuditError(f"no shard file for partition {missing}; no manifest written")
    manifest = Manifest(tuple(heads), prev, utc_stamp((clock or utc_now)()))
    document = {
        "format": MANIFEST_FORMAT,
        "format_version": MANIFEST_VERSION,
        "written_at": manifest.written_at,
        "head": manifest.head,
        "shards": [
            {
                "partition": h.partition,
                "file": h.file,
                "entry_count": h.entry_count,
                "last_hash": h.last_hash,
                "prev_link": h.prev_link,
                "link_hash": h.link_hash,
            }
            for h in heads
        ],
    }
    # The one atomic writer: a manifest is replaced only by a complete one.
    atomic_write_text(root / MANIFEST_NAME, canonical_json(document) + "\n")
    return manifest


def read_manifest(directory: str | os.PathLike[str]) -> Manifest:
    """The manifest of a sharded trail, its link chain checked (AuditError
    if it is missing, unreadable, or its chain does not recompute)."""
    path = Path(directory) / MANIFEST_NAME
    try:
        document: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise AuditError(f"sharded trail {directory} has no {MANIFEST_NAME}") from exc
    except (OSError, ValueError) as exc:
        raise AuditError(f"cannot read {path}: {exc}") from exc
    if not isinstance(document, dict) or document.get("format") != MANIFEST_FORMAT:
        raise AuditError(f"{path} is not a calfrehab audit manifest")
    if document.get("format_version") != MANIFEST_VERSION:
        raise AuditError(f"{path} has an unsupported format_version")
    heads: list[ShardHead] = []
    prev = GENESIS_HASH
    shards = document.get("shards")
    if not isinstance(shards, list):
        raise AuditError(f"{path} lists no shards")
    for i, item in enumerate(shards):
        try:
            head = ShardHead(
                partition=_partition(item["partition"]),
                file=str(item["file"]),
                entry_count=int(item["entry_count"]),
                last_hash=str(item["last_hash"]),
                prev_link=str(item["prev_link"]),
                link_hash=str(item["link_hash"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise AuditError(f"{path}: shard line {i + 1} is damaged ({exc})") from exc
        if head.prev_link != prev or head.link_hash != _link(
            prev, head.partition, head.file, head.entry_count, head.last_hash
        ):
            raise AuditError(
                f"{path}: the link of shard {head.partition} does not recompute: "
                "the manifest was altered"
            )
        if head.file != shard_path(".", head.partition).name:
            raise AuditError(f"{path}: shard {head.partition} names file {head.file!r}")
        heads.append(head)
        prev = head.link_hash
    if document.get("head") != prev:
        raise AuditError(f"{path}: its head does not match its last link: the manifest was altered")
    return Manifest(tuple(heads), prev, str(document.get("written_at")))


def verify_sharded(
    directory: str | os.PathLike[str], partition: int | None = None
) -> ShardedVerifyReport:
    """Verify a sharded trail whole, or (``partition``) one shard alone."""
    root = Path(directory)
    if not root.is_dir():
        raise AuditError(f"no sharded audit trail at {root}")
    files = _shard_files(root)
    manifest: Manifest | None = None
    manifest_problem: str | None = None
    try:
        manifest = read_manifest(root)
    except AuditError as exc:
        manifest_problem = str(exc)
    listed = {h.partition: h for h in manifest.shards} if manifest else {}

    if partition is not None:
        partition = _partition(partition)
        if partition not in files:
            return ShardedVerifyReport(
                False, 0, f"shard {partition} ({shard_path(root, partition).name}) is missing",
                None, bad_partition=partition,
            )
        report = _verify_file(files[partition])
        problem = None if report.ok else report.problem
        if problem is None and manifest is not None:
            problem = _against_manifest(listed.get(partition), partition, report)
        if problem is None and manifest_problem is not None and (root / MANIFEST_NAME).exists():
            problem = manifest_problem
        return ShardedVerifyReport(
            problem is None, report.entries_checked, problem,
            manifest.head if manifest else None, {partition: report},
            None if problem is None else partition,
        )

    if manifest is None:
        return ShardedVerifyReport(False, 0, manifest_problem, None)
    reports: dict[int, VerifyReport] = {}
    checked = 0
    for p in sorted(set(files) | set(listed)):
        if p not in files:
            return ShardedVerifyReport(
                False, checked, f"shard {p} is in the manifest but its file is missing",
                manifest.head, reports, p,
            )
        if p not in listed:
            return ShardedVerifyReport(
                False, checked, f"shard {p} ({files[p].name}) is not in the manifest: "
                "written after it, or added outside calfrehab", manifest.head, reports, p,
            )
        report = _verify_file(files[p])
        reports[p] = report
        checked += report.entries_checked
        problem = report.problem if not report.ok else _against_manifest(listed[p], p, report)
        if problem is not None:
            return ShardedVerifyReport(
                False, checked, f"shard {p}: {problem}", manifest.head, reports, p
            )
    return ShardedVerifyReport(True, checked, None, manifest.head, reports)


def _verify_file(path: Path) -> VerifyReport:
    with AuditTrail(path, readonly=True) as shard:
        return shard.verify()


def _against_manifest(head: ShardHead | None, partition: int, report: VerifyReport) -> str | None:
    if head is None:
        return f"shard {partition} is not in the manifest"
    if (report.entries_checked, report.last_hash) != (head.entry_count, head.last_hash):
        return (
            f"its head (entry {report.entries_checked}, hash {report.last_hash[:12]}…) is not "
            f"the one the manifest records (entry {head.entry_count}, "
            f"hash {head.last_hash[:12]}…)"
        )
    return None
