"""The decision document made directly as JSON-mode data against the model's dump.

    python benchmarks/document_data.py                  # 10,000 generated cases
    python benchmarks/document_data.py --cases 2000 --seed 3 --rounds 5

A batch worker takes a decision's JSON-mode data from
``explanation.document.document_data`` (and its canonical bytes from
``DecisionData.canonical_bytes``) instead of building a ``DecisionDocument``
and dumping it (``model_dump(mode="json")``, then ``canonical_bytes``). For
every case both are made from the same evaluation with the same
decision_id, and must give the same data (keys in the same order, values
of the same types: compared by ``repr``), the same JSON text and the same
canonical bytes as the standard encoder writes them, and the same output
rows (JSON Lines, with the unguarded text a worker writes, and CSV). It prints the count
and the first differences, and exits 1 on any; ``--rounds`` then also times
the two, interleaved in chunks on the same cases, by thread CPU (each
evaluation copied first, as a worker's is fresh). Also used, on fewer
cases, by ``tests/engine/explanation/test_document_data.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import casegen  # noqa: E402

from calfrehab.engine import pipeline  # noqa: E402
from calfrehab.engine.batch.rows import csv_row, json_row  # noqa: E402
from calfrehab.engine.canonical import canonical_bytes, sha256_hex  # noqa: E402
from calfrehab.engine.casefile.validation import validate_document  # noqa: E402
from calfrehab.engine.explanation.document import build_document, document_data  # noqa: E402
from calfrehab.engine.inference.driver import Evaluation, Reasoner  # noqa: E402

# The standard encoder with the canonical options: the form's definition,
# without orjson (canonical.py's module docstring).
_STANDARD = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                             allow_nan=False)


def difference(ev: Evaluation, case_sha256: str) -> str | None:
    """How the two forms of ``ev``'s decision differ, or None."""
    dumped = build_document(ev, case_sha256, "same-id").model_dump(mode="json")
    made = document_data(ev, case_sha256, "same-id")
    if repr(made.document) != repr(dumped):
        return "data differ (keys, order, values or types)"
    if json.dumps(made.document, ensure_ascii=False) != json.dumps(dumped, ensure_ascii=False):
        return "JSON text differs"
    standard = _STANDARD.encode(dumped).encode("utf-8")
    if made.canonical_bytes() != standard or canonical_bytes(dumped) != standard:
        return "canonical bytes differ"
    # The output rows a worker writes (JSON Lines with its unguarded text).
    row = json_row(made.document, "cases.jsonl", 7, checked=made.floats_alike)
    if row != json_row(dumped, "cases.jsonl", 7) or row != json.dumps(
            {**dumped, "source": {"file": "cases.jsonl", "line": 7}},
            ensure_ascii=False, separators=(",", ":")):
        return "JSON Lines rows differ"
    if csv_row(made.document, "c", "f", 1) != csv_row(dumped, "c", "f", 1):
        return "CSV rows differ"
    return None


def differences(reasoner: Reasoner, docs: Iterable[dict[str, Any]]) -> tuple[int, list[str]]:
    """(cases compared, descriptions of the cases that differ)."""
    count, bad = 0, []
    for doc in docs:
        case = validate_document(doc, "<generated>")
        ev = reasoner.evaluate(case)
        count += 1
        found = difference(ev, sha256_hex(canonical_bytes(doc)))
        if found is not None:
            bad.append(f"{doc.get('case_id')}: {found}")
    return count, bad


def _model_path(ev: Evaluation, sha: str) -> bytes:
    return canonical_bytes(build_document(ev, sha).model_dump(mode="json"))


def _data_path(ev: Evaluation, sha: str) -> bytes:
    return document_data(ev, sha).canonical_bytes()


def timings(reasoner: Reasoner, docs: Sequence[dict[str, Any]], rounds: int,
            chunk: int = 25) -> dict[str, float]:
    """µs per case by thread CPU of each path (document, its JSON-mode data
    and its canonical bytes), alternating in chunks, median over rounds."""
    evs = [reasoner.evaluate(validate_document(d, "<generated>")) for d in docs]
    shas = [sha256_hex(canonical_bytes(d)) for d in docs]
    paths: dict[str, Callable[[Evaluation, str], bytes]] = {
        "model + dump + canonical_bytes": _model_path,
        "document_data + canonical_bytes": _data_path,
    }
    per_round: dict[str, list[float]] = {name: [] for name in paths}
    for r in range(rounds):
        spent = dict.fromkeys(paths, 0.0)
        order = list(paths) if r % 2 == 0 else list(reversed(paths))
        gc.collect()
        gc.disable()
        try:
            for start in range(0, len(evs), chunk):
                for name in order:
                    fresh = [dataclasses.replace(ev) for ev in evs[start:start + chunk]]
                    fn = paths[name]
                    t = time.thread_time()
                    for ev, sha in zip(fresh, shas[start:start + chunk], strict=True):
                        fn(ev, sha)
                    spent[name] += time.thread_time() - t
                order.reverse()
        finally:
            gc.enable()
        for name in paths:
            per_round[name].append(spent[name] / len(evs) * 1e6)
    return {name: statistics.median(v) for name, v in per_round.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=0,
                        help="also time both paths over this many rounds (0: compare only)")
    args = parser.parse_args(argv)
    reasoner = pipeline.prepare(None)
    docs = list(casegen.generate_cases(args.cases, seed=args.seed))
    count, bad = differences(reasoner, docs)
    print(f"{count} cases compared, {len(bad)} differ")
    for line in bad[:10]:
        print(f"  {line}")
    if args.rounds:
        for name, us in timings(reasoner, docs, args.rounds).items():
            print(f"  {name}: {us:.1f} us a case")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
