"""Decide many cases: input discovery, worker processes, ordered outputs.

:func:`run_batch` reads case files, directories (their ``*.json``) and JSON
Lines files (one case a line, streamed), decides every good case and writes
one output row per decided case, in input order, whatever the number of
worker processes. A bad case (unreadable, not JSON, invalid, or an engine
error) never stops the run: it goes to the errors report with its file, its
line (JSON Lines) and the message.

How it is built, and why:

* **Workers.** ``jobs > 1`` starts worker processes with the ``forkserver``
  start method where the platform has it (``spawn`` elsewhere). durable-rules
  keeps its state in one host per process, so each worker prepares its own
  engine (:func:`calfrehab.engine.pipeline.prepare`) once, in its initializer;
  ``fork`` is not used, because a child would inherit the parent's open
  SQLite connection and any durable-rules state mid-use. The forkserver
  preloads this module, so a worker starts as a fork of a process that has
  already imported pydantic, durable-rules and the engine. ``jobs == 1``
  evaluates in this process; so does a batch of fewer than
  :data:`SMALL_BATCH` cases unless ``jobs`` is given.
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
* **One writer.** Only this (the parent) process writes the audit trail,
  with :meth:`AuditTrail.record_many` every ``record_every`` cases (one
  transaction, one fsync). Output rows are held back until their decisions
  are committed to the trail, so every row of ``--out`` is in the trail.
* **Atomic outputs.** Each output file is written to a temporary file in
  its own directory and moved over the target with :func:`os.replace` at
  the end: a reader never sees half a file, and a failed run leaves the
  previous file (if any) untouched.
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
  code), the cases of its chunk are decided again one at a time on a fresh
  pool; the case that kills its worker is reported as an engine error and
  the batch goes on.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import json
import math
import multiprocessing
import os
import signal
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

from calfrehab.engine import pipeline
from calfrehab.engine.canonical import case_sha256
from calfrehab.engine.casefile.validation import parse_json, validate_document
from calfrehab.engine.errors import CalfrehabError, CaseValidationError, FieldError
from calfrehab.engine.safeio import AtomicFile
from calfrehab.engine.vocabulary import TRACKS

__all__ = [
    "CSV_COLUMNS",
    "FORMATS",
    "BatchError",
    "BatchOptions",
    "BatchSummary",
    "InputFile",
    "count_cases",
    "csv_row",
    "default_errors_path",
    "discover",
    "format_for",
    "iter_items",
    "run_batch",
]

Format = Literal["csv", "jsonl", "json"]
FORMATS: tuple[str, ...] = ("csv", "jsonl", "json")
_SUFFIX_FORMATS: dict[str, Format] = {
    ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json",
}
JSONL_SUFFIXES = (".jsonl", ".ndjson")
RECORD_EVERY = 500  # decisions per audit-trail transaction
# Below this many cases, starting worker processes (about a second: each
# imports the engine and compiles the rules) costs more than it saves, so
# the default is to decide in-process. An explicit ``jobs`` is obeyed.
SMALL_BATCH = 400
# Chunks in flight per worker (plus one). The pool takes jobs + 1 of them
# at once; the rest wait in the parent (and can still be cancelled), so that
# the workers stay busy while the parent records a transaction.
INFLIGHT = 4
ProgressFn = Callable[[int, int], None]

CSV_COLUMNS: tuple[str, ...] = (
    "file",
    "line",
    "case_id",
    "decision_id",
    "outcome",
    *(
        f"{track}_{part}"
        for track in TRACKS
        for part in ("decision", "next_exercise", "next_load_kg", "next_sets", "next_reps")
    ),
    "condition_kind",
    "first_reason_rule",
    "first_reason",
)


class BatchError(CalfrehabError):
    """A batch that cannot start or cannot finish (bad inputs or outputs)."""


# ------------------------------------------------------------------ inputs


@dataclass(frozen=True)
class InputFile:
    path: Path
    kind: Literal["json", "jsonl"]

    @property
    def name(self) -> str:
        return str(self.path)


class Item(NamedTuple):
    """One case to decide: a whole file (``data`` None: the worker reads
    it) or one line of a JSON Lines file (``data``: its bytes); ``seq`` is
    its place in the input order."""

    seq: int
    file: str
    line: int | None
    data: bytes | None


def discover(inputs: Sequence[str | os.PathLike[str]],
             exclude: Sequence[Path] = ()) -> list[InputFile]:
    """The input files, in the order given; a directory contributes its
    ``*.json`` files sorted by name. ``exclude`` (the outputs) is skipped
    so that rerunning into a directory of inputs does not read its own
    output back."""
    skip = {p.resolve() for p in exclude}
    files: list[InputFile] = []
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            for child in sorted(path.glob("*.json"), key=lambda p: p.name):
                if child.is_file() and child.resolve() not in skip:
                    files.append(InputFile(child, "json"))
        elif path.exists():
            kind: Literal["json", "jsonl"] = (
                "jsonl" if path.suffix.lower() in JSONL_SUFFIXES else "json"
            )
            files.append(InputFile(path, kind))
        else:
            raise BatchError(f"input {raw} does not exist")
    return files


def count_cases(files: Sequence[InputFile]) -> int:
    """How many cases the inputs hold (a JSON Lines file: its non-blank
    lines; an unreadable one counts as one, its error)."""
    total = 0
    for f in files:
        if f.kind == "json":
            total += 1
            continue
        try:
            with f.path.open("rb") as fh:
                total += sum(1 for line in fh if line.strip())
        except OSError:
            total += 1
    return total


def iter_items(files: Sequence[InputFile]) -> Iterator[Item | _Bad]:
    """Every case of the inputs, lazily, numbered in input order. A JSON
    Lines file that cannot be opened yields its error instead."""
    index = 0
    for f in files:
        if f.kind == "json":
            yield Item(index, f.name, None, None)
            index += 1
            continue
        try:
            fh = f.path.open("rb")
        except OSError as exc:
            yield _Bad(index, f.name, None, "unreadable", f"cannot read: {exc.strerror}", None, [])
            index += 1
            continue
        with fh:
            for lineno, raw in enumerate(fh, start=1):
                if raw.strip():
                    yield Item(index, f.name, lineno, raw)
                    index += 1


# ------------------------------------------------------------------ results


class _Good(NamedTuple):
    seq: int
    file: str
    line: int | None
    case_id: str
    outcome: str
    condition: str
    tracks: tuple[str, ...]
    row: Any  # the output row: JSON text (jsonl/json) or a list of cells (csv)
    trail: tuple[dict[str, Any], dict[str, Any]] | None  # (decision, case) to record
    resumed: bool = False  # decided by an earlier run: the recorded decision


class _Bad(NamedTuple):
    seq: int
    file: str
    line: int | None
    kind: str  # unreadable / not_json / invalid / engine
    message: str
    case_id: str | None
    errors: list[dict[str, object]]

    def report(self) -> dict[str, Any]:
        return {
            "file": self.file, "line": self.line, "case_id": self.case_id,
            "kind": self.kind, "message": self.message, "errors": self.errors,
        }


_Result = _Good | _Bad


def _source(file: str, line: int | None) -> dict[str, Any]:
    return {"file": file, "line": line}


def _json_row(decision: dict[str, Any], file: str, line: int | None) -> str:
    doc = dict(decision)
    doc["source"] = _source(file, line)
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def csv_row(decision: dict[str, Any], condition: str | None, file: str,
            line: int | None) -> list[str]:
    """The flat CSV row of one decision document (:data:`CSV_COLUMNS`)."""
    cells: list[Any] = [file, line, decision.get("case_id"), decision.get("decision_id"),
                        decision.get("outcome")]
    tracks = decision.get("tracks") or {}
    for track in TRACKS:
        info = tracks.get(track) or {}
        nxt = info.get("next") or {}
        cells += [info.get("decision"), nxt.get("exercise"), nxt.get("load_kg"),
                  nxt.get("sets"), nxt.get("reps")]
    reasons = decision.get("reasons") or [{}]
    cells += [condition, reasons[0].get("rule"), reasons[0].get("text")]
    return [_cell(c) for c in cells]


def _summary_fields(decision: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    tracks = decision.get("tracks") or {}
    return (str(decision.get("outcome")),
            tuple(str((tracks.get(t) or {}).get("decision")) for t in TRACKS))


# ------------------------------------------------------------------ workers

# Per process: (engine, output format, whether to return trail documents).
_WORKER: tuple[Any, str, bool] | None = None


# The cyclic garbage collector's first threshold during a batch (Python's
# default is 700). A batch allocates a great many short-lived containers
# (parsed cases, pydantic models, decision dicts), almost all freed by
# reference counting; with the default, collections ran every few cases and
# took a third of the parent's CPU time (see docs/performance.md).
GC_THRESHOLD = (20_000, 20, 20)


@contextlib.contextmanager
def _batch_gc() -> Iterator[None]:
    """Fewer cyclic collections for the duration of a batch, then the
    process's own settings again."""
    previous = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLD)
    try:
        yield
    finally:
        gc.set_threshold(*previous)


def _init_worker(rules_dir: Path | None, fmt: str, record: bool, child: bool = True) -> None:
    global _WORKER
    if child:
        # Ctrl-C reaches the whole process group; only the parent decides
        # how to stop, and it lets the workers finish their chunk.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER = (pipeline.prepare(rules_dir), fmt, record)
    if child:
        # The worker process is the batch's own: keep the engine and the
        # imports out of every later collection, and collect rarely.
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLD)


def _decide_item(item: Item) -> _Result:
    assert _WORKER is not None, "worker not initialised"
    engine, fmt, record = _WORKER
    where = item.file if item.line is None else f"{item.file}:{item.line}"
    doc: Any = None
    stage = "not_json"  # the kind of error, as far as the case got
    try:
        data = item.data
        if data is None:
            try:
                data = Path(item.file).read_bytes()
            except OSError as exc:
                stage = "unreadable"
                raise CaseValidationError(
                    where, [FieldError("", f"cannot read: {exc.strerror}")]) from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise CaseValidationError(where, [FieldError("", "not UTF-8 text")]) from None
        doc = parse_json(text, where)
        stage = "invalid"
        case = validate_document(doc, where)
        stage = "engine"
        decided = pipeline.decide(case, doc, engine)
        decision = decided.decision.model_dump(mode="json")
    except CaseValidationError as exc:
        return _Bad(item.seq, item.file, item.line, stage,
                    "; ".join(e.render() for e in exc.errors), _case_id(doc),
                    [e.as_dict() for e in exc.errors])
    except CalfrehabError as exc:
        return _Bad(item.seq, item.file, item.line, "engine", str(exc), _case_id(doc), [])
    except Exception as exc:  # an engine bug must not stop the batch
        return _Bad(item.seq, item.file, item.line, "engine",
                    f"{type(exc).__name__}: {exc}", _case_id(doc), [])
    outcome, tracks = _summary_fields(decision)
    condition = case.condition.kind
    row: Any = (csv_row(decision, condition, item.file, item.line) if fmt == "csv"
                else _json_row(decision, item.file, item.line))
    return _Good(item.seq, item.file, item.line, case.case_id, outcome, condition,
                 tracks, row, (decision, doc) if record else None)


def _case_id(doc: Any) -> str | None:
    if isinstance(doc, dict) and isinstance(doc.get("case_id"), str):
        return str(doc["case_id"])
    return None


def _decide_chunk(items: list[Item]) -> list[_Result]:
    return [_decide_item(item) for item in items]


# ------------------------------------------------------------------ outputs


class _AtomicFile(AtomicFile):
    """A text file written under a temporary name in the target's
    directory and moved into place only by :meth:`commit`: the one atomic
    writer (:mod:`calfrehab.engine.safeio`), created 0600 because batch
    output holds patient data."""

    def __init__(self, target: Path, newline: str | None = None) -> None:
        super().__init__(target, mode=0o600, text=True, newline=newline)


class _OutputWriter:
    def __init__(self, path: Path, fmt: str) -> None:
        self.fmt = fmt
        self.file = _AtomicFile(path, newline="" if fmt == "csv" else None)
        self.rows = 0
        self._csv = csv.writer(self.file.fh, lineterminator="\n") if fmt == "csv" else None
        if self._csv is not None:
            self._csv.writerow(CSV_COLUMNS)
        elif fmt == "json":
            self.file.fh.write("[")

    def write(self, row: Any) -> None:
        if self._csv is not None:
            self._csv.writerow(row)
        elif self.fmt == "json":
            self.file.fh.write(("\n" if self.rows == 0 else ",\n") + row)
        else:
            self.file.fh.write(row + "\n")
        self.rows += 1

    def commit(self) -> None:
        if self.fmt == "json":
            self.file.fh.write("\n]\n" if self.rows else "]\n")
        self.file.commit()

    def abort(self) -> None:
        self.file.abort()


# ------------------------------------------------------------------ summary


@dataclass
class BatchSummary:
    """What a batch did. ``decided`` counts cases decided in this run,
    ``resumed`` those skipped because the trail already held their
    decision (which was written to the output again)."""

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
        }


# ------------------------------------------------------------------ running


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


def _start_method(requested: str | None) -> str:
    if requested:
        return requested
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


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


class _Run:
    def __init__(self, opts: BatchOptions, progress: ProgressFn | None,
                 stop: threading.Event | None) -> None:
        self.opts = opts
        self.progress = progress
        self.stop = stop or threading.Event()
        self.fmt = format_for(opts.out, opts.fmt)
        if opts.resume and not opts.record:
            raise BatchError("--resume reads the audit trail and --no-record skips it; "
                             "use one or the other")
        if opts.out.is_dir():
            raise BatchError(f"--out {opts.out} is a directory; give a file name")
        self.errors_path = opts.errors_path or default_errors_path(opts.out)
        if self.errors_path.resolve() == opts.out.resolve():
            raise BatchError("the errors report and --out must be different files")
        self.jobs = opts.jobs if opts.jobs is not None else default_jobs()
        self.record_every = opts.record_every or RECORD_EVERY
        if self.jobs < 1:
            raise BatchError("--jobs must be at least 1")
        self.summary = BatchSummary(out=opts.out, errors_path=self.errors_path,
                                    format=self.fmt, jobs=self.jobs)
        self.pending: list[_Good] = []  # decided, waiting for the trail
        self.trail: Any = None
        self.executor: Any = None
        self.rulebase_sha = ""

    # ------------------------------------------------------------ resume

    def _recorded(self, item: Item) -> tuple[Item, _Good | None]:
        """The item (with its bytes read), and its recorded decision when
        the trail already holds one for this case and rule base."""
        if item.data is None:
            try:
                item = item._replace(data=Path(item.file).read_bytes())
            except OSError:
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
        outcome, tracks = _summary_fields(decision)
        row = (csv_row(decision, kind, item.file, item.line) if self.fmt == "csv"
               else _json_row(decision, item.file, item.line))
        return item, _Good(item.seq, item.file, item.line, doc["case_id"], outcome, kind,
                           tracks, row, None, resumed=True)

    # ------------------------------------------------------------ pipeline

    def _chunks(self, items: Iterator[Item | _Bad], size: int
                ) -> Iterator[tuple[list[_Result], list[Item]]]:
        """(results known here, items for the workers), in input order."""
        known: list[_Result] = []
        work: list[Item] = []
        for item in items:
            if isinstance(item, _Bad):
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
            _init_worker(opts.rules_dir, self.fmt, opts.record, child=False)
            self.executor = _InlineExecutor()
            return
        method = _start_method(opts.start_method)
        ctx = multiprocessing.get_context(method)
        if method == "forkserver":
            ctx.set_forkserver_preload(["calfrehab.engine.batch"])
        self.executor = ProcessPoolExecutor(
            max_workers=self.jobs, mp_context=ctx, initializer=_init_worker,
            initargs=(opts.rules_dir, self.fmt, opts.record),
        )

    def _collect(self, chunks: Iterator[tuple[list[_Result], list[Item]]],
                 max_inflight: int) -> Iterator[list[_Result]]:
        """Results chunk by chunk, in input order, with at most
        ``max_inflight`` chunks submitted and not yet collected. Once
        ``stop`` is set no new chunk is submitted, those waiting for a
        worker are cancelled, and those being decided are collected."""
        inflight: deque[tuple[list[_Result], list[Item], Future[Any] | None]] = deque()

        def submit() -> bool:
            nxt = next(chunks, None)
            if nxt is None:
                return False
            known, work = nxt
            fut = self.executor.submit(_decide_chunk, work) if work else None
            inflight.append((known, work, fut))
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
                decided: list[_Result] = []
                if fut is not None:
                    try:
                        decided = fut.result()
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

    def _recover(self, work: list[Item],
                 inflight: deque[tuple[list[_Result], list[Item], Future[Any] | None]],
                 ) -> list[_Result]:
        """A worker died (durable-rules is native code): decide the broken
        chunk's cases one at a time on a fresh pool, so that the case that
        kills its worker is known; report it as an engine error, start
        another pool, go on. Chunks in flight on the broken pool that did
        not finish are submitted again."""
        self.executor.shutdown(wait=True, cancel_futures=True)
        self._start_executor()
        decided: list[_Result] = []
        for item in work:
            try:
                decided += self.executor.submit(_decide_chunk, [item]).result()
            except BrokenProcessPool:
                decided.append(_Bad(item.seq, item.file, item.line, "engine",
                                    "the engine's worker process crashed deciding this case",
                                    None, []))
                self.executor.shutdown(wait=True)
                self._start_executor()
        for i, (known, items, fut) in enumerate(inflight):
            if fut is not None and not (fut.done() and not fut.cancelled()
                                        and fut.exception() is None):
                inflight[i] = (known, items, self.executor.submit(_decide_chunk, items))
        return decided

    def _flush(self, out: _OutputWriter) -> None:
        """Record the pending decisions (one transaction), then write their
        rows: a row is in --out only once its decision is in the trail."""
        if not self.pending:
            return
        batch = self.pending
        if self.trail is not None:
            to_record = [g.trail for g in batch if g.trail is not None]
            if to_record:
                self.trail.record_many(to_record, self.opts.clinician)
                self.summary.recorded += len(to_record)
        for good in batch:
            out.write(good.row)
            if good.resumed:
                self.summary.resumed += 1
            else:
                self.summary.decided += 1
            self.summary.count(good.outcome, good.tracks, good.condition)
        self.pending = []

    def run(self) -> BatchSummary:
        opts = self.opts
        started = time.perf_counter()
        files = discover(opts.inputs, exclude=[opts.out, self.errors_path])
        total = self.summary.total = count_cases(files)
        if opts.jobs is None and total < SMALL_BATCH:
            self.jobs = self.summary.jobs = 1
        # Compiling here checks the rules once, with a clean message, before
        # any worker starts, and gives the rule base's sha256 for --resume.
        if self.jobs == 1:
            self.rulebase_sha = pipeline.prepare(opts.rules_dir).compiled.sha256
            size = opts.chunk_size or 16
        else:
            self.rulebase_sha = pipeline.compile_rules(opts.rules_dir).sha256
            size = opts.chunk_size or max(1, min(64, math.ceil(total / (self.jobs * 4))))

        out = _OutputWriter(opts.out, self.fmt)
        errors: _AtomicFile | None = None
        try:
            errors = _AtomicFile(self.errors_path)
            if opts.record:
                from calfrehab.engine.trail.audit import AuditTrail, default_audit_path

                self.summary.audit_path = opts.audit_path or default_audit_path()
                self.trail = AuditTrail(self.summary.audit_path)
            self._start_executor()
            chunks = self._chunks(iter_items(files), size)
            for results in self._collect(chunks, 1 if self.jobs == 1 else INFLIGHT * self.jobs + 1):
                for result in results:
                    if isinstance(result, _Bad):
                        errors.fh.write(json.dumps(result.report(), ensure_ascii=False) + "\n")
                        self.summary.errors += 1
                        self.summary.errors_by_kind[result.kind] += 1
                    else:
                        self.pending.append(result)
                if len(self.pending) >= self.record_every or not opts.record:
                    self._flush(out)
                if self.progress is not None:
                    self.progress(self.summary.processed + len(self.pending), total)
            self._flush(out)
            self.summary.interrupted = self.stop.is_set() and self.summary.processed < total
            self.executor.shutdown(wait=True)
            self.executor = None
            out.commit()
            errors.commit()
        except BaseException:
            if self.executor is not None:
                self.executor.shutdown(wait=False, cancel_futures=True)
            out.abort()
            if errors is not None:
                errors.abort()
            raise
        finally:
            if self.trail is not None:
                self.trail.close()
        self.summary.elapsed_s = time.perf_counter() - started
        return self.summary


def run_batch(options: BatchOptions, progress: ProgressFn | None = None,
              stop: threading.Event | None = None) -> BatchSummary:
    """Decide every case of ``options.inputs``; see the module docstring.

    ``progress(done, total)`` is called after each chunk. Setting ``stop``
    ends the run early and cleanly (``summary.interrupted``). Raises
    :class:`BatchError` (or :class:`~calfrehab.engine.trail.audit.AuditError`,
    :class:`~calfrehab.engine.errors.RuleError`) when the batch as a whole
    cannot run; then no output file is written or replaced.
    """
    with _batch_gc():
        return _Run(options, progress, stop).run()
