"""A sharded audit trail: one hash-chained trail per partition, and a
manifest that chains the shards' heads.

A Dask batch decides its partitions on many machines at once, and one
SQLite file cannot take their writes. So each partition records into its
own shard, an ordinary audit trail (``<run>-<partition>.sqlite3``, its
entries hash-chained as in any trail), and when the partitions are done the
parent appends one line per shard to ``manifest.jsonl``::

    {"seq": 7, "shard": "20261202T0130-ab12-00003.sqlite3", "entries": 5000,
     "head": "<the shard's last entry_hash>", "prev": "<line 6's hash>",
     "hash": "<sha256 of this line's canonical JSON without 'hash'>"}

The manifest is itself a hash chain over the shard heads: removing,
reordering or rewriting a shard, or a line, breaks it. :func:`verify_shards`
checks the whole (every line, every shard's own chain, every head), and
:func:`verify_shard` checks one shard alone.

Layout: the shards of ``--audit clinic.sqlite3`` live in
``clinic.sqlite3.shards/``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from calfrehab.engine.canonical import canonical_bytes, sha256_hex
from calfrehab.engine.errors import CalfrehabError
from calfrehab.engine.safeio import shown

__all__ = [
    "GENESIS",
    "MANIFEST",
    "ShardHead",
    "ShardsReport",
    "append_manifest",
    "shard_dir",
    "shard_head",
    "verify_shard",
    "verify_shards",
]

MANIFEST = "manifest.jsonl"
GENESIS = "0" * 64


class ShardError(CalfrehabError):
    """A sharded trail that cannot be read or does not verify."""


@dataclass(frozen=True)
class ShardHead:
    shard: str  # file name inside the shard directory
    entries: int
    head: str  # the last entry's hash (GENESIS for an empty shard)


@dataclass
class ShardsReport:
    ok: bool
    shards: int
    entries: int
    problem: str | None = None


def shard_dir(trail: Path) -> Path:
    return trail.with_name(trail.name + ".shards")


def _trail(path: Path) -> Any:
    from calfrehab.engine.trail.audit import AuditTrail

    return AuditTrail(path)


def shard_head(path: Path) -> ShardHead:
    """The number of entries of a shard and its last entry's hash."""
    with _trail(path) as trail:
        report = trail.verify()
    if not report.ok:
        raise ShardError(f"shard {shown(path)} does not verify: {report.problem}")
    return ShardHead(path.name, report.entries_checked, report.last_hash or GENESIS)


def _line_hash(line: dict[str, Any]) -> str:
    return sha256_hex(canonical_bytes({k: v for k, v in line.items() if k != "hash"}))


def _read_manifest(directory: Path) -> list[dict[str, Any]]:
    path = directory / MANIFEST
    if not path.exists():
        return []
    lines = []
    for n, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            lines.append(json.loads(text))
        except json.JSONDecodeError:
            raise ShardError(f"{shown(path)} line {n} is not JSON") from None
    return lines


def append_manifest(directory: Path, heads: list[ShardHead]) -> None:
    """Chain ``heads`` onto the manifest (one fsynced append)."""
    lines = _read_manifest(directory)
    prev = lines[-1]["hash"] if lines else GENESIS
    seq = len(lines)
    out: list[str] = []
    for head in heads:
        line: dict[str, Any] = {"seq": seq, "shard": head.shard, "entries": head.entries,
                                "head": head.head, "prev": prev}
        line["hash"] = prev = _line_hash(line)
        out.append(json.dumps(line, sort_keys=True, separators=(",", ":")) + "\n")
        seq += 1
    fd = os.open(directory / MANIFEST, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, "".join(out).encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def _lines(directory: Path) -> Iterator[tuple[dict[str, Any], str | None]]:
    prev = GENESIS
    for i, line in enumerate(_read_manifest(directory)):
        problem = None
        if line.get("seq") != i:
            problem = f"manifest line {i + 1}: seq {line.get('seq')!r}, expected {i}"
        elif line.get("prev") != prev:
            problem = f"manifest line {i + 1}: does not chain to the line before"
        elif line.get("hash") != _line_hash(line):
            problem = f"manifest line {i + 1}: its hash does not match its content"
        yield line, problem
        prev = str(line.get("hash"))


def verify_shard(path: Path) -> ShardsReport:
    """One shard alone: its own hash chain."""
    try:
        head = shard_head(path)
    except (ShardError, CalfrehabError) as exc:
        return ShardsReport(False, 1, 0, str(exc))
    return ShardsReport(True, 1, head.entries)


def verify_shards(directory: Path) -> ShardsReport:
    """The whole sharded trail: the manifest's chain, each shard's chain, and
    each shard's head as the manifest recorded it. A shard file that the
    manifest does not list is a problem too."""
    if not (directory / MANIFEST).exists():
        return ShardsReport(False, 0, 0, f"no {MANIFEST} in {shown(directory)}")
    listed: set[str] = set()
    shards = entries = 0
    for line, problem in _lines(directory):
        if problem is not None:
            return ShardsReport(False, shards, entries, problem)
        name = str(line.get("shard"))
        listed.add(name)
        path = directory / name
        if not path.is_file():
            return ShardsReport(False, shards, entries, f"shard {name} is missing")
        try:
            head = shard_head(path)
        except CalfrehabError as exc:
            return ShardsReport(False, shards, entries, str(exc))
        if (head.entries, head.head) != (line.get("entries"), line.get("head")):
            return ShardsReport(False, shards, entries,
                                f"shard {name}: {head.entries} entries ending {head.head[:12]}, "
                                f"the manifest says {line.get('entries')} ending "
                                f"{str(line.get('head'))[:12]}")
        shards += 1
        entries += head.entries
    extra = sorted(p.name for p in directory.glob("*.sqlite3") if p.name not in listed)
    if extra:
        return ShardsReport(False, shards, entries,
                            f"shard {extra[0]} is not in the manifest")
    return ShardsReport(True, shards, entries)
