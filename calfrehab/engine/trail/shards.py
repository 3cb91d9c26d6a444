"""A sharded audit trail: one hash-chained trail per batch partition, and a
manifest that chains the shards' heads.

A batch spread over a cluster (``batch --dask``) records from many
processes on many machines at once, and one SQLite file cannot take that.
So each partition records into its own **shard**, an ordinary format-2
trail with its own chain, in the trail's shard directory (for ``--audit
clinic.sqlite3``, ``clinic.sqlite3.shards/``; see :func:`shard_dir`), and
when its partitions are done the run appends one line per shard to
``manifest.jsonl``, itself a hash chain::

    {"entries": 5000, "hash": "<sha256 of this line's canonical JSON without 'hash'>",
     "head": "<the shard's last entry_hash>", "prev": "<the line before's hash>",
     "seq": 7, "shard": "20261202T0130-ab12-00003.sqlite3"}

``prev`` of line 0 is 64 zeros. The manifest is only ever appended to, so
a later run's shards chain onto the earlier runs'. Removing, reordering or
rewriting a line, or a shard, or adding a shard the manifest does not
list, breaks it: :func:`verify_shards` checks the whole (every line, every
shard's own chain, every shard's head against its line, no shard missing
or extra) and :func:`verify_shard` checks one shard alone (its chain, and
its head against its line when the manifest lists it). The last line's
``hash`` stands for everything recorded so far: write it down as you
would a single trail's last hash.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from calfrehab.engine.canonical import canonical_bytes, canonical_json, sha256_hex
from calfrehab.engine.clock import Clock
from calfrehab.engine.trail.audit import AuditTrail
from calfrehab.engine.trail.chain import VerifyReport
from calfrehab.engine.trail.errors import AuditError
from calfrehab.engine.trail.schema import GENESIS_HASH

__all__ = [
    "GENESIS",
    "MANIFEST",
    "ShardHead",
    "ShardsReport",
    "append_manifest",
    "is_sharded",
    "manifest_lines",
    "open_shard",
    "shard_dir",
    "shard_head",
    "shard_name",
    "verify_shard",
    "verify_shards",
]

MANIFEST: Final = "manifest.jsonl"
GENESIS: Final = GENESIS_HASH
SHARD_SUFFIX: Final = ".sqlite3"
# A shard's file name is written by calfrehab and read back from a
# directory listing: keep it a plain name (no path, no control characters).
_SHARD_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.sqlite3$")
MAX_PARTITION: Final = 10_000_000


class ShardError(AuditError):
    """A sharded trail that cannot be read or written as asked."""


@dataclass(frozen=True, slots=True)
class ShardHead:
    """A shard's head: its file name in the shard directory, its entry
    count and its last entry's hash (64 zeros while empty)."""

    shard: str
    entries: int
    head: str


@dataclass(frozen=True, slots=True)
class ShardsReport:
    """Result of :func:`verify_shards` / :func:`verify_shard`. ``reports``
    holds each shard's own verification; ``bad_shard`` names the shard the
    ``problem`` is about, if one is; ``manifest_head`` is the last line's
    hash (what to write down)."""

    ok: bool
    shards: int
    entries: int
    problem: str | None = None
    bad_shard: str | None = None
    manifest_head: str | None = None
    reports: dict[str, VerifyReport] = field(default_factory=dict)


def shard_dir(trail: str | os.PathLike[str]) -> Path:
    """Where the shards of the trail ``trail`` (a file path) live."""
    path = Path(trail)
    return path.with_name(path.name + ".shards")


def shard_name(partition: int, run: str = "shard") -> str:
    """A shard's file name: ``<run>-<partition, 5 digits>.sqlite3``."""
    if (
        not isinstance(partition, int)
        or isinstance(partition, bool)
        or not 0 <= partition < MAX_PARTITION
    ):
        raise ShardError(f"a shard partition is an integer from 0 to {MAX_PARTITION - 1}")
    name = f"{run}-{partition:05d}{SHARD_SUFFIX}"
    if not _SHARD_NAME.match(name):
        raise ShardError(f"{run!r} cannot name a shard (letters, digits, '.', '_', '-')")
    return name


def is_sharded(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a shard directory (it holds a manifest)."""
    p = Path(path)
    return p.is_dir() and (p / MANIFEST).is_file()


def open_shard(
    directory: str | os.PathLike[str],
    partition: int,
    *,
    run: str = "shard",
    clock: Clock | None = None,
) -> AuditTrail:
    """Open (creating if need be) one partition's shard, for recording.
    Call it in the process that runs the partition, and record with
    :meth:`AuditTrail.record_prepared` as into any trail; append the heads
    to the manifest (:func:`append_manifest`) once the partitions are done."""
    path = Path(directory) / shard_name(partition, run)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ShardError(f"cannot create the shard directory {path.parent}: {exc}") from exc
    return AuditTrail(path, clock=clock)


def shard_head(path: str | os.PathLike[str]) -> ShardHead:
    """A shard's head, after verifying its chain (ShardError if it fails:
    a manifest vouches only for shards that verify)."""
    p = Path(path)
    with AuditTrail(p, readonly=True) as trail:
        report = trail.verify()
    if not report.ok:
        raise ShardError(f"shard {p.name} does not verify: {report.problem}")
    return ShardHead(p.name, report.entries_checked, report.last_hash)


def _line_hash(line: dict[str, Any]) -> str:
    return sha256_hex(canonical_bytes({k: v for k, v in line.items() if k != "hash"}))


def manifest_lines(directory: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The manifest's lines, parsed (none if there is no manifest)."""
    path = Path(directory) / MANIFEST
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise ShardError(f"cannot read {path}: {exc}") from exc
    lines: list[dict[str, Any]] = []
    for n, raw in enumerate(text.splitlines(), start=1):
        try:
            line = json.loads(raw)
        except ValueError:
            raise ShardError(f"{path} line {n} is not JSON") from None
        if not isinstance(line, dict):
            raise ShardError(f"{path} line {n} is not a JSON object")
        lines.append(line)
    return lines


def append_manifest(directory: str | os.PathLike[str], heads: Sequence[ShardHead]) -> str:
    """Chain ``heads`` onto the manifest (one fsynced append; the manifest
    is never rewritten). Returns the new last line's hash. Refuses to
    extend a manifest whose own chain is broken."""
    root = Path(directory)
    checked = list(_checked_lines(root))
    broken = [problem for _, problem in checked if problem is not None]
    if broken:
        raise ShardError(f"{root / MANIFEST}: {broken[0]}; refusing to append to it")
    prev = checked[-1][0]["hash"] if checked else GENESIS
    seq = len(checked)
    out: list[str] = []
    for head in heads:
        if not _SHARD_NAME.match(head.shard):
            raise ShardError(f"{head.shard!r} is not a shard file name")
        line: dict[str, Any] = {
            "seq": seq,
            "shard": head.shard,
            "entries": head.entries,
            "head": head.head,
            "prev": prev,
        }
        line["hash"] = prev = _line_hash(line)
        out.append(canonical_json(line) + "\n")
        seq += 1
    if not out:
        return str(prev)
    try:
        fd = os.open(root / MANIFEST, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, "".join(out).encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise ShardError(f"cannot append to {root / MANIFEST}: {exc.strerror or exc}") from exc
    return str(prev)


def _checked_lines(directory: Path) -> Iterator[tuple[dict[str, Any], str | None]]:
    prev = GENESIS
    for i, line in enumerate(manifest_lines(directory)):
        problem = None
        if line.get("seq") != i:
            problem = f"manifest line {i + 1}: seq {line.get('seq')!r}, expected {i}"
        elif line.get("prev") != prev:
            problem = f"manifest line {i + 1}: does not chain to the line before"
        elif line.get("hash") != _line_hash(line):
            problem = f"manifest line {i + 1}: its hash does not match its content"
        elif not isinstance(line.get("shard"), str) or not _SHARD_NAME.match(line["shard"]):
            problem = f"manifest line {i + 1}: {line.get('shard')!r} is not a shard file name"
        yield line, problem
        prev = str(line.get("hash"))


def _against_line(line: dict[str, Any] | None, name: str, report: VerifyReport) -> str | None:
    if line is None:
        return f"shard {name} is not in the manifest"
    if (report.entries_checked, report.last_hash) != (line.get("entries"), line.get("head")):
        return (
            f"shard {name}: {report.entries_checked} entries ending "
            f"{report.last_hash[:12]}…, the manifest says {line.get('entries')} ending "
            f"{str(line.get('head'))[:12]}…"
        )
    return None


def _verify_file(path: Path) -> VerifyReport:
    with AuditTrail(path, readonly=True) as trail:
        return trail.verify()


def verify_shards(directory: str | os.PathLike[str]) -> ShardsReport:
    """The whole sharded trail: the manifest's chain, each listed shard's
    chain, each shard's head against its line, and no shard file the
    manifest does not list."""
    root = Path(directory)
    if not (root / MANIFEST).is_file():
        return ShardsReport(False, 0, 0, f"no {MANIFEST} in {root}")
    reports: dict[str, VerifyReport] = {}
    entries = 0
    head: str | None = None
    listed: dict[str, dict[str, Any]] = {}
    for line, problem in _checked_lines(root):
        if problem is not None:
            return ShardsReport(False, len(reports), entries, problem, None, head, reports)
        head = str(line["hash"])
        name = line["shard"]
        if name in listed:
            return ShardsReport(
                False, len(reports), entries, f"shard {name} is listed twice in the manifest",
                name, head, reports,
            )
        listed[name] = line
        path = root / name
        if not path.is_file():
            return ShardsReport(
                False, len(reports), entries, f"shard {name} is in the manifest but missing",
                name, head, reports,
            )
        report = _verify_file(path)
        reports[name] = report
        entries += report.entries_checked
        problem = (
            f"shard {name}: {report.problem}" if not report.ok
            else _against_line(line, name, report)
        )
        if problem is not None:
            return ShardsReport(False, len(reports), entries, problem, name, head, reports)
    extra = sorted(p.name for p in root.glob(f"*{SHARD_SUFFIX}") if p.name not in listed)
    if extra:
        return ShardsReport(
            False, len(reports), entries,
            f"shard {extra[0]} is not in the manifest: written after it, or added by hand",
            extra[0], head, reports,
        )
    return ShardsReport(True, len(reports), entries, None, None, head, reports)


def verify_shard(path: str | os.PathLike[str]) -> ShardsReport:
    """One shard alone: its own chain and, when its directory's manifest
    lists it, its head against that line (the manifest's own chain is
    checked up to it)."""
    p = Path(path)
    if not p.is_file():
        return ShardsReport(False, 0, 0, f"shard {p.name} is missing", p.name)
    report = _verify_file(p)
    if not report.ok:
        return ShardsReport(
            False, 1, report.entries_checked, f"shard {p.name}: {report.problem}", p.name,
            None, {p.name: report},
        )
    line: dict[str, Any] | None = None
    head: str | None = None
    if (p.parent / MANIFEST).is_file():
        for candidate, problem in _checked_lines(p.parent):
            if problem is not None:
                return ShardsReport(
                    False, 1, report.entries_checked, problem, None, head, {p.name: report}
                )
            head = str(candidate["hash"])
            if candidate["shard"] == p.name:
                line = candidate
        problem = _against_line(line, p.name, report)
        if problem is not None:
            return ShardsReport(
                False, 1, report.entries_checked, problem, p.name, head, {p.name: report}
            )
    return ShardsReport(True, 1, report.entries_checked, None, None, head, {p.name: report})
