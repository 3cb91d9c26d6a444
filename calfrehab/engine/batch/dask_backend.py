"""Decide a batch on a Dask cluster (``calfrehab batch --dask ADDRESS``).

The inputs are cut into partitions (:mod:`.partitions`: paths and byte
offsets, never case bytes), one Dask task per partition. Each task, in a
worker process:

* prepares the engine once per process (:func:`_engine_for`), since
  durable-rules keeps one host per process and is not thread-safe: the
  workers must be single-threaded (``--nthreads 1``; a LocalCluster is
  started that way);
* decides its cases with the same code as a local batch
  (:func:`.worker.decide_item`);
* writes its rows and errors to its own files in a parts directory beside
  ``--out``, and records its decisions in its own shard of the audit trail
  (:mod:`calfrehab.engine.trail.shards`), a row being written only once its
  decision is recorded.

The parent then chains the shard heads into the shards' manifest and merges
the partition outputs, in partition order, into ``--out`` and the errors
report (:mod:`.merge`): the same columns and order as a local batch.

Why it used to be slow, and what this does instead (measured in
``docs/performance.md``): the nanny starts every worker with
``MALLOC_TRIM_THRESHOLD_=65536``, which turns off glibc's adaptive mmap
threshold, and a case then costs about 930 page faults and 2.6 ms of
kernel time: twice the CPU of a local worker (:func:`_tame_malloc` sets
the thresholds back, in any worker). Besides, a task per case paid the
scheduler's round trip per case, and ``api.prepare`` per case re-hashed
the rules directory each time. Here a task is a partition of thousands of
cases, the engine is prepared once per process, garbage collection is
tuned as in the local workers, and a LocalCluster's workers run without
the statistical profiler (which samples the task thread every 10 ms).

Inputs, outputs and the trail must be on a file system every worker sees
(NFS, a cluster file system), at the same paths.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import glob
import importlib
import math
import os
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from calfrehab.engine import pipeline
from calfrehab.engine.batch import worker
from calfrehab.engine.batch.inputs import Bad, count_cases, discover
from calfrehab.engine.batch.local import ProgressFn, prepare_outputs
from calfrehab.engine.batch.lock import TrailRunLock
from calfrehab.engine.batch.merge import merge_outputs, part_format
from calfrehab.engine.batch.options import (
    BatchError,
    BatchOptions,
    BatchSummary,
    BatchUsageError,
    resolve_jobs,
)
from calfrehab.engine.batch.outputs import ErrorsWriter, OutputWriter
from calfrehab.engine.batch.partitions import Partition, iter_partition, plan_partitions
from calfrehab.engine.trail.shards import open_shard, write_manifest

__all__ = ["DASK_WORKER_CONFIG", "PartitionJob", "PartitionResult", "decide_partition",
           "run_dask"]

#: Dask settings for the workers a LocalCluster starts (and the ones to set
#: on a real cluster's workers): the statistical profiler samples the task
#: thread every 10 ms, which costs a CPU-bound Python task dearly.
DASK_WORKER_CONFIG: dict[str, Any] = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.system-monitor.gil.enabled": False,
    # See _tame_malloc: the nanny's malloc setting doubles the CPU per case.
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
}
# Cases per partition: big enough that the scheduler's per-task cost
# vanishes, small enough that every worker gets several (for balance).
MIN_PARTITION = 200
MAX_PARTITION = 20_000
PARTITIONS_PER_WORKER = 4


@dataclass(frozen=True)
class PartitionJob:
    """Everything a worker needs to decide one partition (it pickles small)."""

    partition: Partition
    rules_dir: str | None
    fmt: str  # the partition's own format (csv or jsonl)
    out: str
    errors: str
    shards: str | None  # the sharded trail's directory (None: --no-record)
    clinician: str | None
    parent_pid: int | None  # a LocalCluster's workers die with the batch


@dataclass
class PartitionResult:
    index: int
    summary: BatchSummary = field(default_factory=BatchSummary)
    elapsed_s: float = 0.0
    # The partition's shard head (entry count, last hash) once its
    # decisions are committed; None without a trail.
    shard_head: tuple[int, str] | None = None


# ------------------------------------------------------------------ in the worker

_ENGINES: dict[tuple[str | None, str], bool] = {}


# glibc's mallopt parameters (<malloc.h>) and the values a plain process
# ends up with once glibc's dynamic thresholds have adapted to a batch.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's maximum on 64-bit
_TRIM_THRESHOLD = 2 * _MMAP_THRESHOLD


def _tame_malloc() -> None:
    """Undo what Dask's nanny does to malloc in its workers.

    The nanny starts each worker with ``MALLOC_TRIM_THRESHOLD_=65536``. Any
    such setting turns off glibc's dynamic mmap threshold, so every
    allocation over 128 KB is a fresh mmap and munmap: about 930 page faults
    and 2.6 ms of kernel time per case, which made a Dask worker need twice
    the CPU of a local one for the same cases. Setting both thresholds to
    what glibc's own adaptation reaches brings it back (glibc only; a no-op
    elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None)
        libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
        libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)


def _engine_for(rules_dir: str | None, fmt: str) -> None:
    """Prepare this process's engine once (per rules directory and format)."""
    key = (rules_dir, fmt)
    if _ENGINES.get(key):
        return
    _ENGINES.clear()
    _tame_malloc()
    worker.init_worker(Path(rules_dir) if rules_dir else None, fmt, True, child=False)
    # As in a local worker: the engine and the imports stay out of every
    # later collection, and collections are rare.
    gc.collect()
    gc.freeze()
    gc.set_threshold(*worker.GC_THRESHOLD)
    _ENGINES[key] = True


def decide_partition(job: PartitionJob) -> PartitionResult:
    """Decide one partition (runs in a Dask worker process)."""
    started = time.perf_counter()
    if job.parent_pid is not None and job.parent_pid != os.getppid():
        with contextlib.suppress(Exception):
            _watch_once(job.parent_pid)
    _engine_for(job.rules_dir, job.fmt)
    result = PartitionResult(job.partition.index)
    summary = result.summary
    out = OutputWriter(Path(job.out), job.fmt)
    errors = ErrorsWriter(Path(job.errors))
    trail: Any = None
    prepared: list[Any] = []
    try:
        if job.shards is not None:
            trail = open_shard(job.shards, job.partition.index)
        for item in iter_partition(job.partition):
            got = item if isinstance(item, Bad) else worker.decide_item(item)
            if isinstance(got, Bad):
                errors.write(got.report())
                summary.errors += 1
                summary.errors_by_kind[got.kind] += 1
                continue
            # Rows go to the partition's temporary file at once; it becomes
            # part of --out only after the partition's decisions are recorded.
            out.write(got.row)
            summary.decided += 1
            summary.count(got.outcome, got.tracks, got.condition)
            if trail is not None and got.trail is not None:
                prepared.append(got.trail)
        if trail is not None and prepared:
            # One transaction per partition: a worker killed mid-partition
            # has recorded nothing, so Dask's retry of the task on another
            # worker does not decide any case twice.
            trail.record_prepared(prepared, job.clinician)
            summary.recorded += len(prepared)
        if trail is not None:
            result.shard_head = trail.head()
        out.commit()
        errors.commit()
    except BaseException:
        out.abort()
        errors.abort()
        raise
    finally:
        if trail is not None:
            trail.close()
    result.elapsed_s = time.perf_counter() - started
    return result


_WATCHING: set[int] = set()


def _watch_once(pid: int) -> None:
    if pid not in _WATCHING:
        _WATCHING.add(pid)
        worker.die_with(pid)


# ------------------------------------------------------------------ in the parent


def _sweep_parts(directory: Path, name: str) -> None:
    """Remove the parts directories a killed Dask batch left beside --out
    (``.<name>.<pid>.parts.*`` of a process that is no longer running)."""
    for path in directory.glob(f".{glob.escape(name)}.*.parts.*"):
        pid = path.name[len(name) + 2:].split(".", 1)[0]
        if not pid.isdigit() or not path.is_dir() or path.is_symlink():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except (PermissionError, OverflowError):
            pass


def sharded_trail_dir(trail: Path) -> Path:
    """Where a Dask batch records: ``--audit`` itself when it names a
    directory (a sharded trail), else ``<audit>.shards/`` beside the file."""
    return trail if trail.is_dir() else trail.with_name(trail.name + ".shards")


def _distributed() -> Any:
    """dask.distributed, untyped (it ships no type hints), or a clean error."""
    try:
        return importlib.import_module("dask.distributed")
    except ImportError:
        raise BatchUsageError("--dask needs Dask: pip install 'calfrehab[dask]'") from None


def _client(address: str, jobs: int) -> tuple[Any, Any]:
    """(client, cluster or None): a LocalCluster of ``jobs`` single-threaded
    worker processes for ``local``, else a client of the scheduler."""
    distributed = _distributed()
    if address == "local":
        with importlib.import_module("dask").config.set(DASK_WORKER_CONFIG):
            cluster = distributed.LocalCluster(
                n_workers=jobs, threads_per_worker=1, processes=True, host="127.0.0.1",
                dashboard_address=None,
                # No dashboard, and the scheduler's own HTTP server (health,
                # metrics) on a free loopback port, not the fixed 8787 that a
                # second batch on the machine would find taken.
                scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"})
            return distributed.Client(cluster), cluster
    try:
        return distributed.Client(address, timeout="20s"), None
    except (OSError, TimeoutError) as exc:
        raise BatchError(f"cannot reach the Dask scheduler at {address}: {exc}") from None


def _check_single_threaded(client: Any) -> int:
    info = client.scheduler_info()["workers"]
    if not info:
        raise BatchError("the Dask cluster has no workers")
    threaded = [w for w, i in info.items() if i.get("nthreads", 1) != 1]
    if threaded:
        raise BatchUsageError(
            f"Dask worker {threaded[0]} runs {info[threaded[0]]['nthreads']} threads; "
            "durable-rules is not thread-safe: start workers with --nthreads 1")
    return len(info)


def run_dask(opts: BatchOptions, progress: ProgressFn | None = None,
             stop: threading.Event | None = None) -> BatchSummary:
    assert opts.dask is not None
    stop = stop or threading.Event()
    started = time.perf_counter()
    if opts.resume:
        raise BatchUsageError("--resume is not available with --dask yet; rerun the batch "
                              "without --resume, or without --dask")
    found = discover(opts.inputs)
    fmt, errors_path, trail_path = prepare_outputs(opts, [f.path for f in found.files])
    jobs = resolve_jobs(opts.jobs)
    summary = BatchSummary(out=opts.out, errors_path=errors_path, format=fmt, jobs=jobs,
                           skipped=found.skipped, backend="dask",
                           audit_path=None if trail_path is None else sharded_trail_dir(trail_path))
    total = summary.total = count_cases(found.files)
    # The rules are checked here once, with a clean message, before any task.
    pipeline.compiled(opts.rules_dir)
    lock = TrailRunLock(trail_path) if trail_path is not None else None
    if lock is not None:
        lock.acquire()
    out_dir = opts.out.parent if str(opts.out.parent) else Path(".")
    _sweep_parts(out_dir, opts.out.name)
    parts_dir = Path(tempfile.mkdtemp(prefix=f".{opts.out.name}.{os.getpid()}.parts.",
                                      dir=out_dir))
    client = cluster = None
    try:
        client, cluster = _client(opts.dask, jobs)
        workers = _check_single_threaded(client)
        summary.jobs = workers
        _warm_up(client, opts.rules_dir, part_format(fmt))
        size = opts.partition_size or max(
            MIN_PARTITION, min(MAX_PARTITION,
                               math.ceil(total / (workers * PARTITIONS_PER_WORKER)) or 1))
        partitions, _ = plan_partitions(found.files, size)
        summary.partitions = len(partitions)
        shards = sharded_trail_dir(trail_path) if trail_path is not None else None
        if shards is not None:
            shards.mkdir(mode=0o700, exist_ok=True)
        pfmt = part_format(fmt)
        jobs_list = [
            PartitionJob(
                partition=p, rules_dir=None if opts.rules_dir is None else str(opts.rules_dir),
                fmt=pfmt, out=str(parts_dir / f"part-{p.index:05d}.{pfmt}"),
                errors=str(parts_dir / f"part-{p.index:05d}.errors.jsonl"),
                shards=None if shards is None else str(shards),
                clinician=opts.clinician,
                parent_pid=os.getpid() if cluster is not None else None,
            )
            for p in partitions
        ]
        results = _gather(client, jobs_list, summary, total, progress, stop)
        done = sorted(results, key=lambda r: r.index)
        summary.interrupted = len(done) < len(jobs_list)
        if shards is not None:
            # The manifest chains every shard's head: the whole run (and any
            # earlier run into the same directory) verifies as one. The
            # shards this run wrote are checked against the heads their
            # workers reported; older ones are verified whole.
            write_manifest(shards, written={
                r.index: r.shard_head for r in done if r.shard_head is not None})
        kept = {r.index for r in done}
        merge_outputs([Path(j.out) for j in jobs_list if j.partition.index in kept],
                      [Path(j.errors) for j in jobs_list if j.partition.index in kept],
                      opts.out, errors_path, fmt)
    finally:
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close()
        shutil.rmtree(parts_dir, ignore_errors=True)
        if lock is not None:
            lock.release()
    summary.elapsed_s = time.perf_counter() - started
    return summary


def _warm_up(client: Any, rules_dir: Path | None, fmt: str) -> None:
    """Prepare the engine on every worker before the first partition, as a
    local batch does when it starts its workers: each worker imports
    calfrehab and compiles the rules once, in its task thread (durable-rules
    is then only ever used from that thread), all workers at the same time.
    A worker that joins later prepares on its first partition."""
    rules = None if rules_dir is None else str(rules_dir)
    futures = [client.submit(_engine_for, rules, fmt, workers=[address],
                             allow_other_workers=False, pure=False)
               for address in client.scheduler_info()["workers"]]
    client.gather(futures)


def _gather(client: Any, jobs_list: list[PartitionJob], summary: BatchSummary, total: int,
            progress: ProgressFn | None, stop: threading.Event) -> list[PartitionResult]:
    futures = client.map(decide_partition, jobs_list, pure=False)
    results: list[PartitionResult] = []
    try:
        for fut in _distributed().as_completed(futures):
            result: PartitionResult = fut.result()
            results.append(result)
            summary.merge(result.summary)
            if progress is not None:
                progress(summary.processed, total)
            if stop.is_set():
                break
    finally:
        client.cancel([f for f in futures if not f.done()])
    return results
