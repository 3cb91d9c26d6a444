"""Decide many cases on this machine: worker processes, ordered outputs.

:func:`run_batch` reads case files, directories (their ``*.json``, any
case) and JSON Lines files (one case a line, streamed), decides every good
case and writes one output row per decided case, in input order, whatever
the number of worker processes. A bad case (unreadable, not JSON, invalid,
or an engine error) never stops the run: it goes to the errors report with
its file, its line (JSON Lines) and the message.

How it is built, and why:

* **Refusals first.** Before any work: an output may not be an input, the
  audit trail (or its ``-wal``/``-shm``), the other output, a device, a
  special file or a symlink (:func:`calfrehab.engine.safeio.check_outputs`,
  exit 2); ``jobs`` is at most :func:`~.options.max_jobs`; inputs with no
  case file at all are an error (exit 1).
* **Workers.** ``jobs > 1`` starts worker processes with the ``forkserver``
  start method where the platform has it (``spawn`` elsewhere). durable-rules
  keeps its state in one host per process, so each worker prepares its own
  engine once, in its initializer; ``fork`` is not used, because a child
  would inherit the parent's open SQLite connection and any durable-rules
  state mid-use. The forkserver preloads the worker module, so a worker
  starts as a fork of a process that has already imported pydantic,
  durable-rules and the engine. Workers end when the batch process ends
  (:func:`~.worker.die_with`). ``jobs == 1`` evaluates in this process; so
  does a batch of fewer than :data:`SMALL_BATCH` cases unless ``jobs`` is
  given.
* **Chunks.** Work goes to the workers in chunks of cases (up to 64)
  so that the pickling and the queue round trip are paid per chunk, not per
  case. Workers return, per case, the output row already serialised and,
  when recording, the decision and case documents for the trail.
* **Bounded memory.** Input is read lazily (a JSON Lines file line by line),
  at most ``4 * jobs + 1`` chunks are in flight at once, and results are
  written to the output files as they arrive, so memory does not grow with
  the number of cases.
* **Order.** Chunks are collected in submission order, and a chunk's
  results in input order, so outputs are deterministic (apart from each
  decision's ``decision_id``).
* **One writer, one run per trail.** Only this (the parent) process writes
  the audit trail, with :meth:`AuditTrail.record_many` every
  ``record_every`` cases (one transaction, one fsync), and it holds the
  trail's run lock (:mod:`.lock`) for the whole run, so two batches never
  decide the same case from one trail. Output rows are held back until
  their decisions are committed to the trail, so every row of ``--out`` is
  in the trail.
* **Atomic outputs.** Each output file is written to a temporary file in
  its own directory and moved over the target at the end
  (:class:`calfrehab.engine.safeio.AtomicFile`): a reader never sees half a
  file, and a failed run leaves the previous file (if any) untouched.
  Temporary files a killed run left behind are swept at the next run.
* **Stopping.** When ``stop`` is set (the CLI sets it on Ctrl-C), no new
  work starts and chunks no worker has taken are cancelled; the chunks
  being decided are collected, everything decided is recorded and written,
  and the run says it was interrupted.
* **Resuming.** ``resume=True`` skips the cases whose exact case document
  (sha256) the trail already holds a decision for under the same rule base
  (:meth:`AuditTrail.has_decision`) and writes that recorded decision to
  the output instead, so a rerun after a crash or a Ctrl-C decides every
  case exactly once and still produces complete outputs.
* **Crashed workers.** If a worker process dies (durable-rules is native
  code, or someone killed it), the pool is rebuilt and the cases of every
  chunk it had not returned are decided again, one at a time, on the fresh
  pool; a case that kills its worker again is reported as an engine error
  and the batch goes on.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import math
import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from calfrehab.engine import pipeline
from calfrehab.engine.batch import worker
from calfrehab.engine.batch.inputs import Bad, Item, count_cases, discover, iter_items
from calfrehab.engine.batch.lock import TrailRunLock
from calfrehab.engine.batch.options import (
    BatchError,
    BatchOptions,
    BatchSummary,
    BatchUsageError,
    default_errors_path,
    format_for,
    resolve_jobs,
)
from calfrehab.engine.batch.outputs import ErrorsWriter, OutputWriter
from calfrehab.engine.batch.rows import csv_row, json_row, summary_fields
from calfrehab.engine.batch.worker import Good, Result
from calfrehab.engine.canonical import case_sha256
from calfrehab.engine.casefile.validation import parse_json
from calfrehab.engine.errors import CaseValidationError, InputError
from calfrehab.engine.limits import max_input_bytes
from calfrehab.engine.safeio import check_outputs, read_input_bytes, sweep_stale_temps
from calfrehab.engine.workerstart import WORKER_MODULE, forkserver_available

# How long a dead worker's missing result is waited for before the pool is
# taken as hung (see _Run._result_of): the pool itself notices a death in
# milliseconds, so this only ever runs out when a death left it stuck.
WORKER_DEATH_GRACE_S = 5.0

__all__ = ["INFLIGHT", "RECORD_EVERY", "RECORD_TAIL", "SMALL_BATCH", "ProgressFn", "run_batch"]

# Decisions per audit-trail transaction. Each commit writes every page the
# transaction touched, and the entries' indexes take random keys (ids,
# hashes), so a larger transaction writes each index page fewer times:
# recording 10,000 prepared entries took 46.2 us of the parent's CPU a case
# at 500, 41.2 at 1,000, 38.5 at 2,000 (thread CPU, 6 alternating rounds).
# What it costs: up to this many decided cases held back until their commit
# (3.4 KB each in the parent, measured: about 5 MB more at the peak than at
# 500, whatever the batch's size), and redone by --resume after a crash.
RECORD_EVERY = 2000
# Per transaction once fewer than RECORD_EVERY cases are still to come: the
# last transaction is committed after the workers have finished, with
# nothing running beside it, so it is kept as short as it was before.
RECORD_TAIL = 500
# Below this many cases, starting worker processes (about a second: each
# imports the engine and compiles the rules) costs more than it saves, so
# the default is to decide in-process. An explicit ``jobs`` is obeyed.
SMALL_BATCH = 400
# Chunks in flight per worker (plus one). The pool takes jobs + 1 of them
# at once; the rest wait in the parent (and can still be cancelled), so that
# the workers stay busy while the parent records a transaction.
INFLIGHT = 4
ProgressFn = Callable[[int, int], None]
_Inflight = deque[tuple[list[Result], list[Item], "Future[Any] | None"]]


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where there is none (musl, macOS)."""
    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


def release_free_heap() -> bool:
    """Give the heap glibc holds free back to the system; whether it could.

    Called after each trail transaction. The parent frees a transaction's
    results (and SQLite its buffers) in pieces between longer-lived ones, so
    glibc keeps ever more free memory it cannot hand back by shrinking the
    heap: in a --jobs 2 parent it held 2.4 MB free at 10,000 cases and 4.9
    MB at 40,000, and resident memory crept up with it while the memory in
    use did not (benchmarks/memory_plateau.py). Trimming once a transaction
    (2,000 cases) kept it flat, for at most a few milliseconds a trim."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


def _start_method(requested: str | None) -> str:
    if requested:
        return requested
    return "forkserver" if forkserver_available() else "spawn"


def _broken() -> Future[Any]:
    fut: Future[Any] = Future()
    fut.set_exception(BrokenProcessPool("the worker pool is broken"))
    return fut


class _InlineExecutor:
    """The executor interface, evaluating in this process (``jobs == 1``)."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        fut: Future[Any] = Future()
        try:
            fut.set_result(fn(*args))
        except BaseException as exc:
            fut.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        return fut

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        return


def prepare_outputs(opts: BatchOptions, inputs: list[Path]) -> tuple[str, Path, Path | None]:
    """The format, the errors report's path and the trail's path, after
    refusing any output that would destroy data (exit 2, before any work)."""
    fmt = format_for(opts.out, opts.fmt)
    if opts.resume and not opts.record:
        raise BatchError("--resume reads the audit trail and --no-record skips it; "
                         "use one or the other")
    if opts.out.is_dir() and not opts.out.is_symlink():
        raise BatchError(f"--out {opts.out} is a directory; give a file name")
    errors_path = opts.errors_path or default_errors_path(opts.out)
    trail_path: Path | None = None
    if opts.record:
        from calfrehab.engine.trail.audit import default_audit_path

        trail_path = opts.audit_path or default_audit_path()
    check_outputs([opts.out, errors_path], inputs=inputs, trail=trail_path)
    for target in (opts.out, errors_path):
        sweep_stale_temps(target)
    return fmt, errors_path, trail_path


class _Run:
    def __init__(self, opts: BatchOptions, progress: ProgressFn | None,
                 stop: threading.Event | None) -> None:
        self.opts = opts
        self.progress = progress
        self.stop = stop or threading.Event()
        self.jobs = resolve_jobs(opts.jobs)
        self.record_every = opts.record_every or RECORD_EVERY
        self.pending: list[Good] = []  # decided, waiting for the trail
        self.trail: Any = None
        self.executor: Any = None
        self.rulebase_sha = ""
        self.fmt = ""
        self.summary = BatchSummary(out=opts.out, jobs=self.jobs)

    # ------------------------------------------------------------ resume

    def _recorded(self, item: Item) -> tuple[Item, Good | None]:
        """The item (with its bytes read), and its recorded decision when
        the trail already holds one for this case and rule base."""
        if item.data is None:
            try:
                item = item._replace(
                    data=read_input_bytes(item.file, cap_bytes=max_input_bytes()))
            except InputError:
                return item, None  # the worker reports it
        assert item.data is not None
        try:
            # The worker's own reading (BOM, duplicate keys, NaN), so that a
            # case is skipped only if the worker would have read it the same.
            doc = parse_json(item.data.decode("utf-8"), item.file)
            digest = case_sha256(doc)
        except (CaseValidationError, UnicodeDecodeError, TypeError, ValueError):
            return item, None  # not JSON: the worker reports it
        if not isinstance(doc, dict) or not isinstance(doc.get("case_id"), str):
            return item, None
        if not self.trail.has_decision(digest, self.rulebase_sha):
            return item, None
        decision = None
        for entry in self.trail.entries(case_id=doc["case_id"], kind="decision"):
            if entry.case_sha256 == digest and entry.rulebase_sha256 == self.rulebase_sha:
                decision = entry.decision  # the latest one wins
        if decision is None:  # pragma: no cover - has_decision said there is one
            return item, None
        condition = doc.get("condition")
        kind = str(condition.get("kind")) if isinstance(condition, dict) else "unknown"
        outcome, tracks = summary_fields(decision)
        row = (csv_row(decision, kind, item.file, item.line) if self.fmt == "csv"
               else json_row(decision, item.file, item.line))
        return item, Good(item.seq, item.file, item.line, doc["case_id"], outcome, kind,
                          tracks, row, None, resumed=True)

    # ------------------------------------------------------------ pipeline

    def _chunks(self, items: Iterator[Item | Bad], size: int
                ) -> Iterator[tuple[list[Result], list[Item]]]:
        """(results known here, items for the workers), in input order."""
        known: list[Result] = []
        work: list[Item] = []
        for item in items:
            if isinstance(item, Bad):
                known.append(item)
            elif self.opts.resume:
                item, done = self._recorded(item)
                if done is not None:
                    known.append(done)
                else:
                    work.append(item)
            else:
                work.append(item)
            if len(work) >= size or len(known) >= size * 4:
                yield known, work
                known, work = [], []
        if known or work:
            yield known, work

    def _start_executor(self) -> None:
        opts = self.opts
        if self.jobs == 1:
            worker.init_worker(opts.rules_dir, self.fmt, opts.record, child=False)
            self.executor = _InlineExecutor()
            return
        method = _start_method(opts.start_method)
        ctx = multiprocessing.get_context(method)
        if method == "forkserver":
            ctx.set_forkserver_preload([WORKER_MODULE])
        self.executor = ProcessPoolExecutor(
            max_workers=self.jobs, mp_context=ctx, initializer=worker.init_worker,
            initargs=(opts.rules_dir, self.fmt, opts.record, True, os.getpid()),
        )

    def _submit(self, work: list[Item]) -> Future[Any]:
        """Submit a chunk; on a pool that is already broken (a worker died
        between two results), a future that fails as the pool did, so that
        the one recovery path in :meth:`_collect` handles it."""
        try:
            fut: Future[Any] = self.executor.submit(worker.decide_chunk, work)
        except BrokenProcessPool:
            return _broken()
        return fut

    def _collect(self, chunks: Iterator[tuple[list[Result], list[Item]]],
                 max_inflight: int) -> Iterator[list[Result]]:
        """Results chunk by chunk, in input order, with at most
        ``max_inflight`` chunks submitted and not yet collected. Once
        ``stop`` is set no new chunk is submitted, those waiting for a
        worker are cancelled, and those being decided are collected."""
        inflight: _Inflight = deque()

        def submit() -> bool:
            nxt = next(chunks, None)
            if nxt is None:
                return False
            known, work = nxt
            inflight.append((known, work, self._submit(work) if work else None))
            return True

        try:
            while len(inflight) < max_inflight and not self.stop.is_set() and submit():
                pass
            stopping = False
            while inflight:
                if self.stop.is_set() and not stopping:
                    # Chunks not yet started are dropped (left for --resume);
                    # those a worker already has are still collected.
                    stopping = True
                    kept = [(k, [], None) if f is not None and f.cancel() else (k, w, f)
                            for k, w, f in inflight]
                    inflight.clear()
                    inflight.extend(kept)
                known, work, fut = inflight.popleft()
                decided: list[Result] = []
                if fut is not None:
                    try:
                        decided = self._result_of(fut)
                    except BrokenProcessPool:
                        if self.stop.is_set():
                            # Stopping anyway (a Ctrl-C can reach a worker
                            # that has not yet set it to be ignored): what
                            # is not decided is left for --resume.
                            inflight.clear()
                            yield sorted(known, key=lambda r: r.seq)
                            return
                        decided = self._recover(work, inflight)
                if not self.stop.is_set():
                    submit()
                yield sorted(known + decided, key=lambda r: r.seq)
        finally:
            for _, _, fut in inflight:
                if fut is not None:
                    fut.cancel()

    def _result_of(self, fut: Future[Any]) -> Any:
        """``fut.result()``, except that a worker killed while it was sending
        a result (a kill -9, the OOM killer) cannot hang the batch.

        ProcessPoolExecutor's manager thread then waits for ever for the
        rest of a half-written message, and the other workers for the result
        queue's lock the dead one held (a CPython limitation: seen here as a
        hung test on Python 3.12). Once a worker has been dead for
        ``WORKER_DEATH_GRACE_S`` with the result still missing, the other
        workers are killed and the parent's end of the result pipe closed:
        the manager thread reads end-of-file, marks the pool broken, and the
        chunk is recovered as for any broken pool (``_recover``)."""
        dead_since: float | None = None
        while True:
            try:
                return fut.result(timeout=0.5)
            except TimeoutError:
                pass
            processes = list((getattr(self.executor, "_processes", None) or {}).values())
            if all(p.is_alive() for p in processes):
                dead_since = None
                continue
            now = time.monotonic()
            if dead_since is None:
                dead_since = now
            elif now - dead_since > WORKER_DEATH_GRACE_S:
                for process in processes:
                    with contextlib.suppress(Exception):
                        process.kill()
                queue = getattr(self.executor, "_result_queue", None)
                with contextlib.suppress(Exception):
                    queue._writer.close()  # type: ignore[union-attr]
                dead_since = None

    def _restart(self) -> None:
        with contextlib.suppress(Exception):
            self.executor.shutdown(wait=True, cancel_futures=True)
        self._start_executor()

    def _recover(self, work: list[Item], inflight: _Inflight) -> list[Result]:
        """A worker died: rebuild the pool, decide the broken chunk's cases
        one at a time (so that a case that kills its worker is known, and
        reported as an engine error), then submit again every chunk in
        flight that the broken pool did not return."""
        self._restart()
        decided: list[Result] = []
        for item in work:
            try:
                decided += self._submit([item]).result()
            except BrokenProcessPool:
                decided.append(Bad(item.seq, item.file, item.line, "engine",
                                   "the engine's worker process crashed deciding this case",
                                   None, []))
                self._restart()
        for i, (known, items, fut) in enumerate(inflight):
            if fut is not None and not (fut.done() and not fut.cancelled()
                                        and fut.exception() is None):
                inflight[i] = (known, items, self._submit(items))
        return decided

    def _flush(self, out: OutputWriter) -> None:
        """Record the pending decisions (one transaction), then write their
        rows: a row is in --out only once its decision is in the trail."""
        if not self.pending:
            return
        batch = self.pending
        if self.trail is not None:
            to_record = [g.trail for g in batch if g.trail is not None]
            if to_record:
                # No skip_decided: the run lock keeps batches apart, and a
                # row must never name a decision the trail does not hold.
                self.trail.record_prepared(to_record, self.opts.clinician)
                self.summary.recorded += len(to_record)
        for good in batch:
            out.write(good.row)
            if good.resumed:
                self.summary.resumed += 1
            else:
                self.summary.decided += 1
            self.summary.count(good.outcome, good.tracks, good.condition)
        self.pending = []
        if self.trail is not None:
            del batch  # the transaction's results, freed before the trim
            release_free_heap()

    def run(self) -> BatchSummary:
        opts = self.opts
        started = time.perf_counter()
        found = discover(opts.inputs)
        self.fmt, errors_path, trail_path = prepare_outputs(
            opts, [f.path for f in found.files])
        summary = self.summary
        summary.format, summary.errors_path, summary.skipped = self.fmt, errors_path, found.skipped
        total = summary.total = count_cases(found.files)
        if opts.jobs is None and total < SMALL_BATCH:
            self.jobs = summary.jobs = 1
        # The rules checked here once, with a clean message, before any
        # worker starts (compiled, or from the compiled-rules cache), and the
        # rule base's sha256 for --resume.
        if self.jobs == 1:
            self.rulebase_sha = pipeline.prepare(opts.rules_dir).compiled.sha256
            size = opts.chunk_size or 16
        else:
            self.rulebase_sha = pipeline.compiled(opts.rules_dir).sha256
            size = opts.chunk_size or max(1, min(64, math.ceil(total / (self.jobs * 4))))

        lock = TrailRunLock(trail_path) if trail_path is not None else None
        if lock is not None:
            lock.acquire()
        out: OutputWriter | None = None
        errors: ErrorsWriter | None = None
        try:
            out = OutputWriter(opts.out, self.fmt)
            errors = ErrorsWriter(errors_path)
            if trail_path is not None:
                from calfrehab.engine.trail.audit import AuditTrail

                summary.audit_path = trail_path
                self.trail = AuditTrail(trail_path)
            self._start_executor()
            chunks = self._chunks(iter_items(found.files), size)
            seen = 0
            for results in self._collect(chunks, 1 if self.jobs == 1 else INFLIGHT * self.jobs + 1):
                seen += len(results)
                for result in results:
                    if isinstance(result, Bad):
                        errors.write(result.report())
                        summary.errors += 1
                        summary.errors_by_kind[result.kind] += 1
                    else:
                        self.pending.append(result)
                every = self.record_every
                if total - seen < every:
                    every = min(every, RECORD_TAIL)
                if len(self.pending) >= every or not opts.record:
                    self._flush(out)
                if self.progress is not None:
                    self.progress(summary.processed + len(self.pending), total)
            self._flush(out)
            summary.interrupted = self.stop.is_set() and summary.processed < total
            self.executor.shutdown(wait=True)
            self.executor = None
            out.commit()
            errors.commit()
        except BaseException:
            if self.executor is not None:
                self.executor.shutdown(wait=False, cancel_futures=True)
            if out is not None:
                out.abort()
            if errors is not None:
                errors.abort()
            raise
        finally:
            if self.trail is not None:
                self.trail.close()
            if lock is not None:
                lock.release()
        summary.elapsed_s = time.perf_counter() - started
        return summary


def run_batch(options: BatchOptions, progress: ProgressFn | None = None,
              stop: threading.Event | None = None) -> BatchSummary:
    """Decide every case of ``options.inputs`` in worker processes on this
    machine; see the module docstring.

    ``progress(done, total)`` is called after each chunk. Setting ``stop``
    ends the run early and cleanly (``summary.interrupted``). Raises
    :class:`BatchError` (or :class:`~calfrehab.engine.trail.audit.AuditError`,
    :class:`~calfrehab.engine.errors.RuleError`) when the batch as a whole
    cannot run; then no output file is written or replaced.
    """
    if options.dask is not None:
        # The Dask backend builds on this module (prepare_outputs), so the
        # choice between them is made above both, in batch.run_batch.
        raise BatchUsageError("a Dask batch runs through calfrehab.engine.batch.run_batch")
    with worker.batch_gc():
        return _Run(options, progress, stop).run()
