"""Cutting a batch's inputs into partitions that another machine can read.

A partition names its cases by where they are, not by their bytes: a case
file by its path, a run of JSON Lines by the file, the byte offset of its
first line and how many lines (blank ones excluded) it holds. The parent
scans each JSON Lines file once (it counts the cases anyway) and the
partition's worker seeks straight to its offset, so no case passes through
the Dask scheduler and no worker reads a line it does not decide.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from calfrehab.engine.batch.inputs import Bad, InputFile, Item
from calfrehab.engine.errors import InputError
from calfrehab.engine.safeio import open_regular

__all__ = ["Partition", "Segment", "iter_partition", "plan_partitions"]


@dataclass(frozen=True)
class Segment:
    """Cases from one input file: a case file (``offset`` None) or
    ``count`` non-blank lines of a JSON Lines file starting at byte
    ``offset`` (line number ``first_line``)."""

    file: str
    offset: int | None
    first_line: int
    count: int
    seq: int  # the input-order number of its first case


@dataclass(frozen=True)
class Partition:
    index: int
    segments: tuple[Segment, ...]

    @property
    def size(self) -> int:
        return sum(s.count for s in self.segments)


def _jsonl_runs(path: Path, size: int, seq: int, room: int) -> Iterator[Segment]:
    """Segments of ``path``: the first holds at most ``room`` cases (what is
    left of the current partition), each later one at most ``size``."""
    try:
        fh = open_regular(path)  # a FIFO or a device is an error, not a hang
    except InputError:
        yield Segment(str(path), 0, 1, 1, seq)  # the worker reports it unreadable
        return
    with fh:
        offset = 0
        start_offset: int | None = None
        start_line = 0
        count = 0
        limit = room
        for lineno, raw in enumerate(fh, start=1):
            if raw.strip():
                if start_offset is None:
                    start_offset, start_line = offset, lineno
                count += 1
                if count >= limit:
                    yield Segment(str(path), start_offset, start_line, count, seq)
                    seq += count
                    start_offset, count, limit = None, 0, size
            offset += len(raw)
        if start_offset is not None and count:
            yield Segment(str(path), start_offset, start_line, count, seq)


def plan_partitions(files: Sequence[InputFile], size: int) -> tuple[list[Partition], int]:
    """The partitions (at most ``size`` cases each, in input order) and the
    number of cases."""
    parts: list[Partition] = []
    current: list[Segment] = []
    held = 0
    seq = 0

    def close() -> None:
        nonlocal current, held
        if current:
            parts.append(Partition(len(parts), tuple(current)))
        current, held = [], 0

    for f in files:
        if f.kind == "json":
            current.append(Segment(f.name, None, 0, 1, seq))
            seq += 1
            held += 1
            if held >= size:
                close()
            continue
        for segment in _jsonl_runs(f.path, size, seq, size - held):
            current.append(segment)
            seq += segment.count
            held += segment.count
            if held >= size:
                close()
    close()
    return parts, seq


def iter_partition(partition: Partition) -> Iterator[Item | Bad]:
    """The partition's cases, read where they are."""
    for seg in partition.segments:
        if seg.offset is None:
            yield Item(seg.seq, seg.file, None, None)
            continue
        try:
            fh = open_regular(seg.file)  # a FIFO or a device: an error, not a hang
        except InputError as exc:
            yield Bad(seg.seq, seg.file, None, "unreadable", exc.reason, None, [])
            continue
        with fh:
            fh.seek(seg.offset)
            seq, got = seg.seq, 0
            for lineno, raw in enumerate(fh, start=seg.first_line):
                if got >= seg.count:
                    break
                if raw.strip():
                    yield Item(seq, seg.file, lineno, raw)
                    seq += 1
                    got += 1
