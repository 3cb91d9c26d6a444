"""Where a batch's extra CPU with the trail goes, process by process.

Runs the real batch (``run_batch``, 2 jobs, CSV out) on N casegen cases
in three modes, in the order given (default A B C C B A, so a load that
rises or falls weighs on each alike):

- ``none``: ``--no-record``;
- ``prepare``: the workers prepare every trail entry (serialise, hash,
  compress) as when recording, and the parent records nothing: the
  workers' own share of the trail;
- ``record``: the batch with the trail, as a user runs it.

For each run it reports, per case: the parent's CPU; each worker's CPU
inside ``decide_chunk`` and as a whole process (the rest is the pool's
queue, pickling and waiting); the part of it in ``prepare_entry`` and
``compress_entries`` (a chunk's entries are compressed together); each
worker's involuntary context switches; and the machine's load. The
workers are instrumented from this module, which a forkserver worker
imports as the main module (as tests/engine/batch does for its crash
test), so the engine's code is measured unchanged.

    python benchmarks/trail_split.py [N] [--order none,prepare,record,...]

On a shared machine every figure moves with the load (the workers' CPU
per case rises about 1.5x from load 2 to load 6), so compare modes only
within one run of this script, and repeat it. Each run is its own process
(the pool's forkserver keeps the environment it started with).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import casegen  # noqa: E402

import calfrehab.engine.batch as batch  # noqa: E402
import calfrehab.engine.batch.worker as worker  # noqa: E402

_STATS_DIR_ENV = "CALFREHAB_TRAIL_SPLIT_DIR"
_FORCE_PREPARE_ENV = "CALFREHAB_TRAIL_SPLIT_PREPARE"

_decide_chunk = worker.decide_chunk
_prepare_entry = worker.__dict__["prepare_entry"]  # not in its __all__
_compress_entries = worker.__dict__["compress_entries"]  # a chunk's, together
_init_worker = worker.init_worker
_spent = {"decide": 0.0, "prepare": 0.0, "cases": 0.0}


def _timed_prepare(*args: Any, **kwargs: Any) -> Any:
    start = time.process_time()
    try:
        return _prepare_entry(*args, **kwargs)
    finally:
        _spent["prepare"] += time.process_time() - start


def _timed_compress(*args: Any, **kwargs: Any) -> Any:
    start = time.process_time()
    try:
        return _compress_entries(*args, **kwargs)
    finally:
        _spent["prepare"] += time.process_time() - start


def _timed_chunk(items: list[Any]) -> list[Any]:
    start = time.process_time()
    results = _decide_chunk(items)
    _spent["decide"] += time.process_time() - start
    _spent["cases"] += len(items)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    stats = {**_spent, "process": usage.ru_utime + usage.ru_stime,
             "involuntary_cs": usage.ru_nivcsw}
    folder = os.environ.get(_STATS_DIR_ENV)
    if folder:  # rewritten after every chunk: the last write is the total
        Path(folder, f"worker-{os.getpid()}.json").write_text(json.dumps(stats))
    return results


def _init(rules_dir: Any, fmt: str, record: bool, *args: Any, **kwargs: Any) -> None:
    if os.environ.get(_FORCE_PREPARE_ENV) == "1":
        record = True  # the workers prepare; the parent still records nothing
    _init_worker(rules_dir, fmt, record, *args, **kwargs)


worker.decide_chunk = _timed_chunk
worker.__dict__["prepare_entry"] = _timed_prepare
worker.__dict__["compress_entries"] = _timed_compress
worker.init_worker = _init


def run(cases: Path, mode: str, folder: Path) -> dict[str, Any]:
    for old in glob.glob(str(folder / "worker-*.json")):
        os.unlink(old)
    trail = folder / "trail.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{trail}{suffix}").unlink(missing_ok=True)
    out = folder / "out.csv"
    out.unlink(missing_ok=True)
    os.environ[_STATS_DIR_ENV] = str(folder)
    os.environ[_FORCE_PREPARE_ENV] = "1" if mode == "prepare" else "0"
    record = mode == "record"
    load = os.getloadavg()[0]
    wall, cpu = time.perf_counter(), time.process_time()
    summary = batch.run_batch(batch.BatchOptions(
        inputs=[str(cases)], out=out, jobs=2, record=record,
        audit_path=trail if record else None))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    n = summary.decided
    workers = [json.loads(Path(p).read_text()) for p in glob.glob(str(folder / "worker-*.json"))]

    def us(seconds: float) -> float:
        return round(seconds / n * 1e6, 1)

    return {
        "mode": mode, "cases": n, "rate": round(n / wall), "load": round(load, 2),
        "parent_us": us(cpu),
        "workers_decide_us": us(sum(w["decide"] for w in workers)),
        "workers_process_us": us(sum(w["process"] for w in workers)),
        "workers_prepare_us": us(sum(w["prepare"] for w in workers)),
        "involuntary_cs": [w["involuntary_cs"] for w in workers],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=6000)
    parser.add_argument("--order", default="none,prepare,record,record,prepare,none")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # MODE CASES FOLDER, in a child
    args = parser.parse_args()
    if args.one:
        mode, cases_path, folder_path = args.one.split(":", 2)
        print(json.dumps(run(Path(cases_path), mode, Path(folder_path))), flush=True)
        return
    with tempfile.TemporaryDirectory(prefix="trail-split-") as tmp:
        folder = Path(tmp)
        cases = folder / "cases.jsonl"
        with cases.open("w", encoding="utf-8") as fh:
            for case in casegen.generate_cases(args.n, seed=0):
                fh.write(json.dumps(case, ensure_ascii=False, separators=(",", ":")) + "\n")
        for mode in args.order.split(","):
            # A fresh process per run: the pool's forkserver keeps the
            # environment (and so the mode) it started with.
            subprocess.run([sys.executable, __file__, "--one", f"{mode}:{cases}:{folder}"],
                           check=True)


if __name__ == "__main__":
    main()
