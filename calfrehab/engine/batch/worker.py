"""What runs in a worker process: one engine, cases in, rows out.

durable-rules keeps its state in one host per process and is not
thread-safe, so each worker process prepares its own engine once
(:func:`init_worker`) and decides its cases one after another. The same
code decides in the parent when a batch runs with one job, and inside a
Dask worker (:mod:`calfrehab.engine.batch.dask_backend`).

A worker must not outlive the batch that started it (a killed parent once
left the forkserver, its workers and the resource tracker behind, about
136 MB each time): :func:`die_with` ends the worker when the batch process
is gone, whoever the worker's direct parent is.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from calfrehab.engine import pipeline
from calfrehab.engine.batch.inputs import Bad, Item
from calfrehab.engine.batch.rows import csv_row, json_row, summary_fields
from calfrehab.engine.casefile.validation import parse_json_canonical, validate_document
from calfrehab.engine.errors import (
    CalfrehabError,
    CaseValidationError,
    FieldError,
    InputError,
)
from calfrehab.engine.explanation.document import DecisionData
from calfrehab.engine.limits import max_input_bytes
from calfrehab.engine.safeio import read_input_bytes
from calfrehab.engine.trail.prepared import (
    PreparedEntry,
    compress_entries,
    prepare_entry,
    to_canonical,
)

__all__ = [
    "GC_THRESHOLD",
    "Good",
    "Result",
    "batch_gc",
    "decide_chunk",
    "decide_item",
    "die_with",
    "init_worker",
]


class Good(NamedTuple):
    seq: int
    file: str
    line: int | None
    case_id: str
    outcome: str
    condition: str
    tracks: tuple[str, ...]
    row: Any  # the output row: JSON text (jsonl/json) or a list of cells (csv)
    trail: PreparedEntry | None  # the decision made ready for the trail, here
    resumed: bool = False  # decided by an earlier run: the recorded decision


Result = Good | Bad

# The cyclic garbage collector's first threshold during a batch (Python's
# default is 700). A batch allocates a great many short-lived containers
# (parsed cases, pydantic models, decision dicts), almost all freed by
# reference counting; with the default, collections ran every few cases and
# took a third of the parent's CPU time (see docs/performance.md).
GC_THRESHOLD = (20_000, 20, 20)


@contextlib.contextmanager
def batch_gc() -> Iterator[None]:
    """Fewer cyclic collections for the duration of a batch, then the
    process's own settings again."""
    previous = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLD)
    try:
        yield
    finally:
        gc.set_threshold(*previous)


# ------------------------------------------------------------------ lifetime

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _set_pdeathsig() -> None:
    """Linux: SIGKILL this process when its direct parent dies (the
    forkserver, or the batch itself under ``spawn``)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _watch(pid: int) -> None:
    """Block until process ``pid`` ends, then end this process at once.

    A pidfd (Linux 5.3+) wakes exactly when the process ends; elsewhere the
    process is polled once a second. The thread only waits: it never
    touches the engine, which is not thread-safe."""
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        fd = None
    if fd is not None:
        with contextlib.suppress(OSError):
            select.select([fd], [], [])
    else:
        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            except PermissionError:
                pass
            time.sleep(1.0)
    os._exit(1)


def die_with(parent_pid: int) -> None:
    """End this process when ``parent_pid`` (the batch) ends."""
    _set_pdeathsig()
    if parent_pid != os.getpid():
        threading.Thread(target=_watch, args=(parent_pid,), name="calfrehab-parent-watch",
                         daemon=True).start()


# ------------------------------------------------------------------ deciding

# Per process: (reasoner, output format, whether to return trail documents).
_WORKER: tuple[Any, str, bool] | None = None


def init_worker(rules_dir: Path | None, fmt: str, record: bool, child: bool = True,
                parent_pid: int | None = None) -> None:
    global _WORKER
    if child:
        # Ctrl-C reaches the whole process group; only the parent decides
        # how to stop, and it lets the workers finish their chunk.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if parent_pid is not None:
            die_with(parent_pid)
    _WORKER = (pipeline.prepare(rules_dir), fmt, record)
    if child:
        # The worker process is the batch's own: keep the engine and the
        # imports out of every later collection, and collect rarely.
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLD)


def _case_id(doc: Any) -> str | None:
    if isinstance(doc, dict) and isinstance(doc.get("case_id"), str):
        return str(doc["case_id"])
    return None


def decide_item(item: Item, *, compress: bool = True) -> Result:
    """Decide one case; recording, its trail entry made ready here.
    ``compress=False`` leaves the entry's documents uncompressed, for
    decide_chunk to compress the chunk's together (trail/prepared.py's
    compress_entries says why: about 35 us a case less)."""
    assert _WORKER is not None, "worker not initialised"
    reasoner, fmt, record = _WORKER
    where = item.file if item.line is None else f"{item.file}:{item.line}"
    doc: Any = None
    stage = "not_json"  # the kind of error, as far as the case got
    try:
        data = item.data
        if data is None:
            try:
                # A regular file only, at most the input cap: a FIFO or
                # /dev/zero named as a case must not hang or fill memory.
                data = read_input_bytes(item.file, cap_bytes=max_input_bytes())
            except InputError as exc:
                stage = "unreadable"
                raise CaseValidationError(where, [FieldError("", exc.reason)]) from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise CaseValidationError(where, [FieldError("", "not UTF-8 text")]) from None
        # Parsed with its canonical bytes (the case's hash) in one go.
        doc, case_bytes = parse_json_canonical(text, where)
        stage = "invalid"
        case = validate_document(doc, where)
        stage = "engine"
        # The decision as JSON-mode data, made directly: no model is built
        # only to be dumped again (pipeline.decide_data).
        made, case_bytes = pipeline.decide_data(case, doc, reasoner, parsed=True,
                                                case_bytes=case_bytes)
        decision = made.document
        # Serialised, hashed and compressed here, once, in the worker: the
        # parent only chains and inserts (trail format 2).
        # decide_data() hashed the case bytes for the decision's case_sha256:
        # those are the trail's case bytes, so they are not hashed again.
        # Refused as prepare_entry refuses a decision it serialises itself.
        prepared = (prepare_entry(decision, doc, case_bytes=case_bytes,
                                  decision_bytes=to_canonical(
                                      made, f"decision document {decision['decision_id']}",
                                      DecisionData.canonical_bytes),
                                  case_bytes_sha256=decision["case_sha256"],
                                  compress=compress)
                    if record else None)
    except CaseValidationError as exc:
        return Bad(item.seq, item.file, item.line, stage,
                   "; ".join(e.render() for e in exc.errors), _case_id(doc),
                   [e.as_dict() for e in exc.errors])
    except CalfrehabError as exc:
        return Bad(item.seq, item.file, item.line, "engine", str(exc), _case_id(doc), [])
    except Exception as exc:  # an engine bug must not stop the batch
        return Bad(item.seq, item.file, item.line, "engine",
                   f"{type(exc).__name__}: {exc}", _case_id(doc), [])
    outcome, tracks = summary_fields(decision)
    condition = case.condition.kind
    row: Any = (csv_row(decision, condition, item.file, item.line) if fmt == "csv"
                else json_row(decision, item.file, item.line, checked=made.floats_alike))
    return Good(item.seq, item.file, item.line, case.case_id, outcome, condition,
                tracks, row, prepared)


def decide_chunk(items: list[Item]) -> list[Result]:
    # The chunk's entries compressed together rather than case by case:
    # about 35 us a case less (trail/prepared.py's compress_entries says why).
    return _compressed([decide_item(item, compress=False) for item in items])


def _compressed(results: list[Result]) -> list[Result]:
    """``results`` with their trail entries compressed, together; a
    failure (none is known) fails only its own case, as in decide_item."""
    at = [(i, r, r.trail) for i, r in enumerate(results)
          if isinstance(r, Good) and r.trail is not None]
    if not at:
        return results
    out = list(results)
    try:
        packed = compress_entries([entry for _, _, entry in at])
    except Exception:
        for i, good, entry in at:
            try:
                out[i] = good._replace(trail=compress_entries([entry])[0])
            except Exception as exc:
                out[i] = Bad(good.seq, good.file, good.line, "engine",
                             f"{type(exc).__name__}: {exc}", good.case_id, [])
        return out
    for (i, good, _), entry in zip(at, packed, strict=True):
        out[i] = good._replace(trail=entry)
    return out
