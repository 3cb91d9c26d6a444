"""Rebuild the trail's compression dictionaries from the repository's examples.

The audit trail (format 2) stores every case and decision document as a
zlib stream with a preset dictionary: a few typical documents, so that the
keys, rule names, reason texts and citations every document repeats cost a
few bytes each instead of being spelled out again (about 13 KB of canonical
JSON per decision shrinks to about 1 KB, where plain zlib gives 3 KB).

The dictionaries are built from ``examples/*.json`` (the valid cases and
the decisions the shipped rules make for them) and written as JSON Lines
under ``calfrehab/engine/trail/dictionaries/``; the bytes zlib uses are the
canonical JSON of those lines, joined. A trail stores every dictionary it
used, so rebuilding them never makes an existing trail unreadable: new
entries simply use the new ones.

    .venv/bin/python scripts/build_trail_dictionaries.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from calfrehab.engine import api
from calfrehab.engine.canonical import canonical_bytes
from calfrehab.engine.errors import CalfrehabError

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "calfrehab" / "engine" / "trail" / "dictionaries"
# zlib looks back at most 32 KiB; a longer dictionary only wastes its start.
BUDGET = 32 * 1024


def _fit(docs: list[bytes]) -> list[bytes]:
    """As many documents as fit the budget, most typical (the ones with the
    most common shape: median size) last, where zlib reaches them cheapest."""
    by_typical = sorted(docs, key=lambda d: abs(len(d) - sorted(map(len, docs))[len(docs) // 2]))
    chosen: list[bytes] = []
    total = 0
    for doc in by_typical:
        if total + len(doc) > BUDGET:
            continue
        chosen.append(doc)
        total += len(doc)
    return list(reversed(chosen))


def main() -> int:
    engine = api.prepare()
    cases: list[bytes] = []
    decisions: list[bytes] = []
    for path in sorted((REPO / "examples").glob("*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        try:
            decided = api.decide_document(document, engine, str(path))
        except CalfrehabError:
            continue  # an invalid example: nothing typical to learn from
        decision = decided.decision.model_dump(mode="json")
        decision["decision_id"] = "0" * 32  # a random id teaches zlib nothing
        cases.append(canonical_bytes(document))
        decisions.append(canonical_bytes(decision))
    OUT.mkdir(parents=True, exist_ok=True)
    for name, docs in (("case", cases), ("decision", decisions)):
        lines = _fit(docs)
        (OUT / f"{name}.jsonl").write_bytes(b"".join(line + b"\n" for line in lines))
        print(f"{name}: {len(lines)} documents, {sum(map(len, lines))} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
