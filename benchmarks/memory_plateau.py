"""Where a long one-process batch's memory goes: resident memory and what
could grow, sampled as the cases go by.

    python benchmarks/memory_plateau.py --cases 200000     # about 4 min on an idle core
    python benchmarks/memory_plateau.py --cases 50000 --every 5000 --no-record
    python benchmarks/memory_plateau.py --cases 100000 --jobs 2   # the parent's rows

Runs ``calfrehab batch`` (``run_batch``, ``--jobs 1``: the cases are decided
in this process, which also reads, records and writes) on generated cases
(benchmarks/casegen.py, seed 0) with the audit trail on, in a temporary
directory, and prints one row every ``--every`` cases:

- resident memory from ``/proc/self/smaps_rollup``: in all, anonymous (the
  heaps) and file-backed (mapped libraries, SQLite's WAL index);
- glibc's heap in use and held free (``mallinfo2``: durable-rules' C side,
  SQLite's page cache, large Python objects) and Python's allocated blocks
  (``sys.getallocatedblocks``);
- the objects the cyclic collector tracks (cyclic garbage waiting for a
  collection would show here);
- the entries of the driver's caches (parsed action messages, fact texts
  of every ruleset), which are bounded (durable_host.MESSAGES_MAX,
  selection.TEXTS_MAX).

Flat memory shows as a plateau: the rows stop rising once the caches are
full. Issue 28 item 6 found the caches, then bounded at 50,000 entries,
growing with the batch (see the commit that bounded them at 2,048). Not a
test: it takes minutes. Linux only (``/proc``, glibc).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import casegen  # noqa: E402


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
        "uordblks", "fordblks", "keepcost")]


def _heap_mb() -> tuple[float, float]:
    """glibc's heap: (in use, arena and mmapped blocks; held free in its
    arenas), or -1s elsewhere."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        info = libc.mallinfo2()
    except (OSError, AttributeError):
        return -1.0, -1.0
    return float(info.uordblks + info.hblkhd) / 2**20, float(info.fordblks) / 2**20


def _rollup_mb() -> dict[str, float]:
    out: dict[str, float] = {}
    with open("/proc/self/smaps_rollup", encoding="ascii") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) >= 3 and parts[-1] == "kB":
                out[parts[0].rstrip(":")] = int(parts[1]) / 1024
    return out


def sample(done: int) -> dict[str, Any]:
    from calfrehab.engine.batch import worker
    from calfrehab.engine.inference import durable_host

    roll = _rollup_mb()
    heap, heap_free = _heap_mb()
    reasoner = worker._WORKER[0] if worker._WORKER is not None else None
    texts = ({name: len(t) for name, t in reasoner._texts.items()}
             if reasoner is not None else {})
    return {
        "cases": done, "rss_mb": round(roll.get("Rss", 0.0), 1),
        "anon_mb": round(roll.get("Anonymous", 0.0), 1),
        "file_mb": round(roll.get("Rss", 0.0) - roll.get("Anonymous", 0.0), 1),
        "heap_mb": round(heap, 1), "heap_free_mb": round(heap_free, 1),
        "blocks": sys.getallocatedblocks(),
        "gc_objects": len(gc.get_objects()), "messages": len(durable_host._MESSAGES),
        "texts": sum(texts.values()),
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--every", type=int, default=10_000, help="cases between two rows")
    ap.add_argument("--no-record", action="store_true", help="without the audit trail")
    ap.add_argument("--jobs", type=int, default=1,
                    help="worker processes; above 1 the rows are the parent's alone "
                         "(it reads, records and writes; the caches are the workers')")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    args = ap.parse_args(argv)

    from calfrehab.engine.batch import local
    from calfrehab.engine.batch.options import BatchOptions

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="calfrehab-mem-") as tmp:
        work = Path(tmp)
        cases = work / "cases.jsonl"
        with cases.open("w", encoding="utf-8") as fh:
            for case in casegen.generate_cases(args.cases, seed=0):
                fh.write(json.dumps(case, ensure_ascii=False, separators=(",", ":")) + "\n")
        next_row = [args.every]

        def progress(done: int, total: int) -> None:
            # Called after each chunk (16 cases with one job): the row is
            # taken at the first chunk at or past each mark.
            if done >= next_row[0] or done == total:
                while next_row[0] <= done:
                    next_row[0] += args.every
                rows.append(sample(done))
                print(json.dumps(rows[-1]), flush=True)

        opts = BatchOptions(inputs=[cases], out=work / "out.csv", jobs=args.jobs,
                            record=not args.no_record, audit_path=work / "trail.sqlite3")
        started = time.perf_counter()
        local.run_batch(opts, progress)
        print(f"{args.cases:,} cases in {time.perf_counter() - started:.0f}s", file=sys.stderr)
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
