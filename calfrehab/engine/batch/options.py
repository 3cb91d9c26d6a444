"""What a batch is asked to do (:class:`BatchOptions`), what it did
(:class:`BatchSummary`), and the checks made before any work starts."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from calfrehab.engine.errors import BatchError as BatchError
from calfrehab.engine.errors import BatchUsageError as BatchUsageError
from calfrehab.engine.textsafe import for_terminal
from calfrehab.engine.vocabulary import TRACKS

__all__ = [
    "FORMATS",
    "JOBS_PER_CPU",
    "BatchError",
    "BatchOptions",
    "BatchSummary",
    "BatchUsageError",
    "default_errors_path",
    "default_jobs",
    "format_for",
    "max_jobs",
    "resolve_jobs",
]

Format = Literal["csv", "jsonl", "json"]
FORMATS: tuple[str, ...] = ("csv", "jsonl", "json")
_SUFFIX_FORMATS: dict[str, Format] = {
    ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json",
}
#: ``--jobs`` may be at most this many times the CPU count: more workers
#: than that only add memory (each holds an engine, ~50 MB) and start-up
#: time, and ``--jobs 1000`` once forked until the machine refused.
JOBS_PER_CPU = 4


@dataclass(frozen=True)
class BatchOptions:
    inputs: Sequence[str | os.PathLike[str]]
    out: Path
    fmt: str | None = None  # default: from out's suffix
    errors_path: Path | None = None  # default: beside out, <stem>.errors.jsonl
    jobs: int | None = None  # default: the CPU count (1 for fewer than SMALL_BATCH cases)
    rules_dir: Path | None = None
    record: bool = True
    audit_path: Path | None = None  # default: default_audit_path()
    clinician: str | None = None
    resume: bool = False
    chunk_size: int | None = None  # default: from the number of cases and jobs
    start_method: str | None = None  # default: forkserver where available, else spawn
    record_every: int | None = None  # default: RECORD_EVERY
    dask: str | None = None  # a scheduler address, or "local" for a LocalCluster
    partition_size: int | None = None  # Dask: cases per partition (default: from the total)


def format_for(out: Path, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in FORMATS:
            raise BatchError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
        return fmt
    found = _SUFFIX_FORMATS.get(out.suffix.lower())
    if found is None:
        raise BatchError(
            f"cannot tell the output format from {out.name!r}; give --format "
            f"({', '.join(FORMATS)}) or name the file .csv, .jsonl or .json")
    return found


def default_errors_path(out: Path) -> Path:
    return out.with_name(f"{out.stem}.errors.jsonl")


def default_jobs() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def max_jobs() -> int:
    return JOBS_PER_CPU * default_jobs()


def resolve_jobs(jobs: int | None) -> int:
    """``jobs`` checked against 1 .. :func:`max_jobs` (default: the CPU count)."""
    if jobs is None:
        return default_jobs()
    if jobs < 1:
        raise BatchUsageError("--jobs must be at least 1")
    cap = max_jobs()
    if jobs > cap:
        digits = str(jobs)
        shown = digits if len(digits) <= 12 else f"{digits[:10]}… ({len(digits)} digits)"
        raise BatchUsageError(
            f"--jobs {shown} is more than {cap} ({JOBS_PER_CPU} × the {default_jobs()} "
            f"CPUs this process may use); more workers than that only cost memory. "
            f"Use --jobs {default_jobs()} (the default) or at most {cap}.")
    return jobs


@dataclass
class BatchSummary:
    """What a batch did. ``decided`` counts cases decided in this run,
    ``resumed`` those skipped because the trail already held their
    decision (which was written to the output again); ``skipped`` lists
    the files in input directories that are not case files."""

    total: int = 0
    decided: int = 0
    resumed: int = 0
    errors: int = 0
    recorded: int = 0
    by_outcome: Counter[str] = field(default_factory=Counter)
    by_track: dict[str, Counter[str]] = field(
        default_factory=lambda: {t: Counter() for t in TRACKS})
    by_condition: Counter[str] = field(default_factory=Counter)
    errors_by_kind: Counter[str] = field(default_factory=Counter)
    interrupted: bool = False
    elapsed_s: float = 0.0
    out: Path | None = None
    errors_path: Path | None = None
    format: str = ""
    audit_path: Path | None = None
    jobs: int = 1
    skipped: list[Path] = field(default_factory=list)
    backend: str = "local"
    partitions: int = 0

    @property
    def processed(self) -> int:
        return self.decided + self.resumed + self.errors

    @property
    def complete(self) -> bool:
        """Every case decided (now or before), none in error, not stopped."""
        return not self.interrupted and self.errors == 0 and self.processed == self.total

    @property
    def rate(self) -> float:
        return self.processed / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def count(self, outcome: str, tracks: Sequence[str], condition: str) -> None:
        self.by_outcome[outcome] += 1
        for track, decision in zip(TRACKS, tracks, strict=True):
            self.by_track[track][decision] += 1
        self.by_condition[condition] += 1

    def skipped_shown(self, limit: int = 5) -> list[str]:
        """The first ``limit`` skipped paths, safe to print (a file name
        can hold a newline or an escape sequence)."""
        return [for_terminal(str(p)) for p in self.skipped[:limit]]

    def merge(self, other: BatchSummary) -> None:
        """Add a partition's counts to this run's."""
        self.decided += other.decided
        self.resumed += other.resumed
        self.errors += other.errors
        self.recorded += other.recorded
        self.by_outcome.update(other.by_outcome)
        for track, counter in other.by_track.items():
            self.by_track[track].update(counter)
        self.by_condition.update(other.by_condition)
        self.errors_by_kind.update(other.errors_by_kind)

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total, "decided": self.decided, "resumed": self.resumed,
            "errors": self.errors, "recorded": self.recorded,
            "by_outcome": dict(sorted(self.by_outcome.items())),
            "by_track": {t: dict(sorted(c.items())) for t, c in self.by_track.items()},
            "by_condition": dict(sorted(self.by_condition.items())),
            "errors_by_kind": dict(sorted(self.errors_by_kind.items())),
            "interrupted": self.interrupted, "elapsed_s": round(self.elapsed_s, 3),
            "out": None if self.out is None else str(self.out),
            "errors_report": None if self.errors_path is None else str(self.errors_path),
            "format": self.format, "jobs": self.jobs,
            "audit": None if self.audit_path is None else str(self.audit_path),
            "skipped": [str(p) for p in self.skipped],
            "backend": self.backend, "partitions": self.partitions,
        }
