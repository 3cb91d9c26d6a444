"""Instructions per case, under callgrind: the drivers and durable's C share.

    python benchmarks/callgrind_engine.py            # 200 cases, 3 passes
    python benchmarks/callgrind_engine.py --cases 100 --passes 2

On a shared machine every clock lies a little (CPU time too: caches and
frequency are shared); an instruction count does not. This runs
``Reasoner.evaluate`` under ``valgrind --tool=callgrind`` for each driver
(the current one, and the previous one kept as the oracle), once with no
pass over the cases and once with ``--passes`` passes (after one warm-up
pass each), and takes the difference per case:

- ``evaluate``: every instruction of ``evaluate`` per case;
- ``C``: the instructions inside durable-rules' C extension (the inclusive
  count of its Python entry points, ``pyAssertFacts`` and the rest).

Needs valgrind; slow (about a minute per run, the four runs two at a
time). Writes ``benchmarks/out/callgrind_engine.json``. Nothing here is a
test.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

PROGRAM = """
import sys
sys.path.insert(0, {here!r})
import casegen
from calfrehab.engine import pipeline
from calfrehab.engine.casefile.validation import validate_document
from calfrehab.engine.inference.driver import Reasoner
compiled = pipeline.prepare(None).compiled
r = (Reasoner(compiled) if {mode!r} == "new"
     else Reasoner(compiled, reuse_states=False, matchable_only=False))
cases = [validate_document(d, "x") for d in casegen.generate_cases({cases}, seed={seed})]
for c in cases:
    r.evaluate(c)
for _ in range({passes}):
    for c in cases:
        r.evaluate(c)
"""

# durable-rules' C extension's entry points (src/rulespy/rules.c); they do
# not call one another, so their inclusive counts add up.
_ENTRY = re.compile(r"^\s*([\d,]+) \([^)]*\)\s+\?\?\?:(py\w+) \[.*durable_rules_engine")


def _run(mode: str, passes: int, cases: int, seed: int, work: Path) -> dict[str, int]:
    out = work / f"cg-{mode}-{passes}.out"
    code = PROGRAM.format(here=str(HERE), mode=mode, cases=cases, seed=seed, passes=passes)
    subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                    sys.executable, "-c", code], check=True, capture_output=True)
    text = subprocess.run(["callgrind_annotate", "--inclusive=yes", str(out)], check=True,
                          capture_output=True, text=True).stdout
    total = c = 0
    for line in text.splitlines():
        if "PROGRAM TOTALS" in line:
            total = int(line.split()[0].replace(",", ""))
        m = _ENTRY.match(line)
        if m:
            c += int(m.group(1).replace(",", ""))
    return {"total": total, "c": c}


def measure(cases: int, passes: int, seed: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="cg-engine-"))
    try:
        jobs = [(mode, p) for mode in ("new", "old") for p in (0, passes)]
        with ThreadPoolExecutor(max_workers=2) as pool:
            done = list(pool.map(lambda j: _run(j[0], j[1], cases, seed, work), jobs))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    got = dict(zip(jobs, done, strict=True))
    per = {}
    n = cases * passes
    for mode in ("new", "old"):
        a, b = got[(mode, 0)], got[(mode, passes)]
        per[mode] = {"evaluate": round((b["total"] - a["total"]) / n),
                     "c": round((b["c"] - a["c"]) / n)}
    return {
        "benchmark": "callgrind_engine",
        "cases": cases, "passes": passes, "seed": seed,
        "instructions_per_case": per,
        "c_new_over_c_old": round(per["new"]["c"] / per["old"]["c"], 3),
        "evaluate_new_over_c_old": round(per["new"]["evaluate"] / per["old"]["c"], 3),
        "evaluate_new_over_evaluate_old": round(
            per["new"]["evaluate"] / per["old"]["evaluate"], 3),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--json", type=Path, default=HERE / "out" / "callgrind_engine.json")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: nothing measured")
        return 1
    result = measure(args.cases, args.passes, args.seed)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
