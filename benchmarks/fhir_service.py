"""What the FHIR mapping and the CDS Hooks card path cost per case.

    python benchmarks/fhir_service.py                 # 200 cases
    python benchmarks/fhir_service.py --cases 100 --json out.json

For each generated case (``benchmarks/casegen.py``), as the thread's CPU
time (waiting for a CPU on a shared machine is not counted):

- ``to FHIR``: the case as a collection Bundle (``api.case_to_fhir``);
- ``prefetch to case``: the hook request's prefetch (searchset Bundles, as
  a record's FHIR server returns them) read back into a validated case,
  what the service does in its HTTP process for every hook call;
- ``decide``: the decision itself (``api.decide``), what the worker does;
- ``cards``: the decision turned into CDS Hooks cards.

Medians and 95th percentiles in milliseconds, and the prefetch's size.
The HTTP and JWT overhead is not included (the worked exchange in
docs/integration.md shows whole calls). Nothing here is a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import casegen  # noqa: E402

from calfrehab.engine import api  # noqa: E402

CLOCK = time.thread_time


def _timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
    start = CLOCK()
    result = fn(*args, **kwargs)
    return result, (CLOCK() - start) * 1000


def run(n: int, seed: int) -> dict[str, Any]:
    reasoner = api.prepare(None)
    spent: dict[str, list[float]] = {"to FHIR": [], "prefetch to case": [], "decide": [],
                                     "cards": []}
    sizes: list[int] = []
    for doc in casegen.generate_cases(n, seed=seed):
        case = api.validate_document(doc)
        _bundle, ms = _timed(api.case_to_fhir, case)
        spent["to FHIR"].append(ms)
        request = api.parse_cds_hook(api.cds_example_request(case, "bench"))
        prefetch = api.cds_prefetch_bundle(request)
        sizes.append(len(json.dumps(request.prefetch)))
        (read, document), ms = _timed(
            api.case_from_fhir, prefetch, "prefetch", case_id=case.case_id,
            review_date=case.review_date, ignore_unrelated=True)
        spent["prefetch to case"].append(ms)
        assert read == case  # the prefetch gives back the case
        decided, ms = _timed(api.decide, read, document, reasoner)
        spent["decide"].append(ms)
        decision = decided.decision.model_dump(mode="json")
        _cards, ms = _timed(api.cds_cards, decision, source_url="https://x.example",
                            clinician="bench")
        spent["cards"].append(ms)
    return {
        "cases": n,
        "seed": seed,
        "load_average_1m": os.getloadavg()[0],
        "prefetch_kb_median": round(statistics.median(sizes) / 1024, 1),
        "ms": {k: {"median": round(statistics.median(v), 2),
                   "p95": round(statistics.quantiles(v, n=20)[-1], 2)}
               for k, v in spent.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    result = run(args.cases, args.seed)
    text = json.dumps(result, indent=2)
    if args.json is not None:
        args.json.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
