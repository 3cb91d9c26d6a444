"""Soak the reused durable states: many varied cases, no fault, the same
documents as the previous driver.

    python benchmarks/soak_reuse.py one --cases 300000     # one process
    python benchmarks/soak_reuse.py batch --cases 100000   # calfrehab batch --jobs 2, trail on

``one`` decides generated cases (benchmarks/casegen.py, every case
different) one after another in a child process on the default driver,
which must be reusing its states (durable-rules built with calfrehab's fix,
scripts/durable_patch.py); every ``--every``-th case is also decided by the
previous driver (a state per case, every fact sent) and must give the same
firings, outcome and decision document. It prints progress with the
child's resident memory, and how the child ended: a fault shows as the
signal that killed it.

``batch`` writes the generated cases to one JSON Lines file and runs
``calfrehab batch --jobs 2`` on it with the audit trail on (a trail in a
temporary directory), then checks that every case was decided (exit 0, no
errors report line) and that a sample of the output documents equal the
previous driver's, ``decision_id`` and ``source`` aside.

Not a test: it takes minutes. docs/performance-engine.md reports its runs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import casegen  # noqa: E402
import driver_oracle  # noqa: E402

# Fields of a decision document that differ from run to run by design.
VOLATILE = ("decision_id", "source")


def _rss_mb() -> float:
    """Resident memory now (Linux), else the peak."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _one_child(cases: int, seed: int, every: int) -> int:
    from calfrehab.engine import pipeline
    from calfrehab.engine.casefile.validation import validate_document
    from calfrehab.engine.inference.driver import Reasoner

    new = pipeline.prepare(None)
    if not new.reuse_states:
        print("the default driver does not reuse states here (durable-rules without "
              "calfrehab's fix): nothing to soak", flush=True)
        return 1
    old = Reasoner(new.compiled, reuse_states=False, matchable_only=False)
    start, compared, bad = time.perf_counter(), 0, []
    for i, doc in enumerate(casegen.generate_cases(cases, seed=seed)):
        if i % every == 0:
            count, diff = driver_oracle.differences(new, old, [doc])
            compared += count
            bad += diff
        else:
            new.evaluate(validate_document(doc, "<generated>"))
        if (i + 1) % 25_000 == 0 or i + 1 == cases:
            print(json.dumps({"cases": i + 1, "s": round(time.perf_counter() - start, 1),
                              "rss_mb": round(_rss_mb(), 1), "compared": compared,
                              "differ": len(bad)}), flush=True)
    for line in bad[:5]:
        print("  " + line, flush=True)
    return 1 if bad else 0


def one(cases: int, seed: int, every: int) -> int:
    child = subprocess.run([sys.executable, "-X", "faulthandler", __file__, "_one",
                            "--cases", str(cases), "--seed", str(seed),
                            "--every", str(every)])
    code = child.returncode
    print(f"child exit: {code}" + (f" (killed by signal {-code})" if code < 0 else ""))
    return 0 if code == 0 else 1


def _strip(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in VOLATILE}


def batch(cases: int, seed: int, jobs: int, sample: int) -> int:
    from calfrehab.engine import pipeline
    from calfrehab.engine.canonical import canonical_bytes
    from calfrehab.engine.casefile.validation import validate_document
    from calfrehab.engine.inference.driver import Reasoner

    with tempfile.TemporaryDirectory() as tmp:
        inputs = Path(tmp) / "cases.jsonl"
        with inputs.open("w") as out:
            for doc in casegen.generate_cases(cases, seed=seed):
                out.write(json.dumps(doc) + "\n")
        result, errors = Path(tmp) / "out.jsonl", Path(tmp) / "errors.jsonl"
        calfrehab = Path(sys.executable).with_name("calfrehab")
        start = time.perf_counter()
        run = subprocess.run([str(calfrehab), "batch", str(inputs), "--out", str(result),
                              "--errors", str(errors), "--jobs", str(jobs), "--quiet",
                              "--audit", str(Path(tmp) / "audit.sqlite3")])
        seconds = time.perf_counter() - start
        decided = sum(1 for _ in result.open()) if result.exists() else 0
        failed = sum(1 for _ in errors.open()) if errors.exists() else 0
        print(json.dumps({"cases": cases, "exit": run.returncode, "decided": decided,
                          "errors": failed, "s": round(seconds, 1),
                          "cases_per_s": round(cases / seconds, 1)}), flush=True)
        if run.returncode != 0 or decided != cases or failed:
            return 1
        # The previous driver on a sample of the same cases.
        old = Reasoner(pipeline.prepare(None).compiled, reuse_states=False,
                       matchable_only=False)
        step = max(1, cases // sample)
        docs = list(casegen.generate_cases(cases, seed=seed))
        compared = differ = 0
        with result.open() as rows:
            for i, row in enumerate(rows):
                if i % step:
                    continue
                got = json.loads(row)
                doc = docs[i]
                want = driver_oracle._document(
                    old.evaluate(validate_document(doc, "<generated>")), doc)
                compared += 1
                if canonical_bytes(_strip(got)) != canonical_bytes(_strip(want)):
                    differ += 1
                    if differ <= 3:
                        print(f"  {doc['case_id']}: the document differs", flush=True)
        print(json.dumps({"compared": compared, "differ": differ}), flush=True)
        return 1 if differ else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("one", "batch", "_one"))
    parser.add_argument("--cases", type=int, default=300_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--every", type=int, default=50,
                        help="one: compare every N-th case with the previous driver")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--sample", type=int, default=2000,
                        help="batch: documents compared with the previous driver")
    args = parser.parse_args(argv)
    if args.mode == "_one":
        return _one_child(args.cases, args.seed, args.every)
    if args.mode == "one":
        return one(args.cases, args.seed, args.every)
    return batch(args.cases, args.seed, args.jobs, args.sample)


if __name__ == "__main__":
    raise SystemExit(main())
