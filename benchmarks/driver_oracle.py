"""The current driver against the previous one, case by case.

    python benchmarks/driver_oracle.py                # 10,000 generated cases
    python benchmarks/driver_oracle.py --cases 2000 --seed 3

The previous driver (``Reasoner(compiled, reuse_states=False,
matchable_only=False)``: a new durable state per case, every fact a ruleset
reads sent) is kept as the oracle. Each case is evaluated by both, in turn
on the same process's host, and must give the same firings (order, rules,
bindings) and the same decision document apart from ``decision_id``. It
prints the count and the first difference, and exits 1 on any. Also used,
on fewer cases, by ``tests/engine/inference/test_driver_states.py``. Nothing here is timed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import casegen  # noqa: E402

from calfrehab.engine.canonical import canonical_bytes, sha256_hex  # noqa: E402
from calfrehab.engine.casefile.validation import validate_document  # noqa: E402
from calfrehab.engine.explanation.document import build_document  # noqa: E402
from calfrehab.engine.inference.driver import Evaluation, Reasoner  # noqa: E402


def _document(ev: Evaluation, doc: dict[str, Any]) -> dict[str, Any]:
    out = build_document(ev, sha256_hex(canonical_bytes(doc)), "-").model_dump(mode="json")
    return out


def differences(
    new: Reasoner, old: Reasoner, docs: Iterable[dict[str, Any]],
) -> tuple[int, list[str]]:
    """(cases compared, descriptions of the cases that differ)."""
    count, bad = 0, []
    for doc in docs:
        case = validate_document(doc, "<generated>")
        a, b = new.evaluate(case), old.evaluate(case)
        count += 1
        if a.firings != b.firings:
            bad.append(f"{doc.get('case_id')}: firings differ: "
                       f"{[f.rule for f in a.firings]} against {[f.rule for f in b.firings]}")
        elif (a.outcome, a.tracks, a.refer_rules, a.flags) != (
                b.outcome, b.tracks, b.refer_rules, b.flags):
            bad.append(f"{doc.get('case_id')}: outcome or tracks differ")
        elif canonical_bytes(_document(a, doc)) != canonical_bytes(_document(b, doc)):
            bad.append(f"{doc.get('case_id')}: decision documents differ")
    return count, bad


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    from calfrehab.engine import pipeline

    compiled = pipeline.prepare(None).compiled
    new = Reasoner(compiled)
    old = Reasoner(compiled, reuse_states=False, matchable_only=False)
    count, bad = differences(new, old, casegen.generate_cases(args.cases, seed=args.seed))
    print(f"{count - len(bad)}/{count} cases identical (firings, outcome, decision document)")
    for line in bad[:5]:
        print("  " + line)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
