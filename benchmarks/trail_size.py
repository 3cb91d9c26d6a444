"""How big the audit trail is, per decision, and what recording costs.

Decides N benchmark cases (``casegen.py``, seed 0) once, then records the
same decisions into a fresh trail three ways and reports, per decision:

- ``v1``: the format-1 layout (documents as canonical JSON text in each
  row), written by the test suite's format-1 writer, for comparison;
- ``v2``: the current format, 4 since issue 28 (cases stored once by
  sha256, documents as zstd frames with a preset dictionary; formats 2
  and 3 stored zlib streams, and the JSON keys keep the ``v2`` name that
  ``run.py`` reads), through ``record_prepared``
  with the entries prepared beforehand, as a batch's workers do;
- ``v2 after migrate``: the ``v1`` trail upgraded in place by
  ``audit migrate`` (then vacuumed).

For each: file bytes per decision (main file plus WAL, after a
checkpoint), and for ``v2`` the parent's CPU per decision to record
(chain + insert), the worker's CPU per decision to prepare (serialise,
hash, compress), and the CPU per decision of ``audit verify`` (which
decompresses and hashes every stored document). The same case batch is
also recorded twice (a resumed run with a new rule base) to show that
identical cases are stored once.

    python benchmarks/trail_size.py [N] [--out benchmarks/out/trail_size.json]

Writes JSON (default ``benchmarks/out/trail_size.json``) that
``benchmarks/run.py`` folds into ``docs/performance.md``. Target
(issue 15): at most 4 KB a decision on the benchmark cases.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "tests"))  # the format-1 writer, for comparison

from casegen import generate_cases  # noqa: E402

from calfrehab.engine import api  # noqa: E402
from calfrehab.engine.canonical import canonical_bytes  # noqa: E402
from calfrehab.engine.trail.audit import AuditTrail, prepare_entry  # noqa: E402
from calfrehab.engine.trail.migrate import migrate  # noqa: E402

TARGET_BYTES = 4096


def _file_bytes(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return sum(
        os.stat(f"{path}{s}").st_size for s in ("", "-wal") if os.path.exists(f"{path}{s}")
    )


def _cpu() -> float:
    return time.process_time()


def measure(n: int, workdir: Path) -> dict[str, Any]:
    from trail_v1 import write_v1_trail

    engine = api.prepare()
    pairs: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for doc in generate_cases(n, seed=0):
        decided = api.decide_document(doc, engine)
        pairs.append((decided.decision.model_dump(mode="json"), doc))
    raw_case = sum(len(canonical_bytes(c)) for _, c in pairs) / n
    raw_decision = sum(len(canonical_bytes(d)) for d, _ in pairs) / n

    t = _cpu()
    prepared = [prepare_entry(d, c) for d, c in pairs]
    prepare_cpu = (_cpu() - t) / n
    shipped = sum(len(p.case_body) + len(p.decision_body) for p in prepared) / n

    v2 = workdir / "v2.sqlite3"
    with AuditTrail(v2) as trail:
        t = _cpu()
        for start in range(0, n, 500):  # a batch records in chunks
            trail.record_prepared(prepared[start : start + 500])
        record_cpu = (_cpu() - t) / n
    with AuditTrail(v2, readonly=True) as trail:
        t = _cpu()
        assert trail.verify().ok
        verify_cpu = (_cpu() - t) / n
    v2_bytes = _file_bytes(v2)

    # the same cases again, under another rule base (a resumed, re-ruled run)
    again = []
    for d, c in pairs:
        d2 = dict(d, decision_id=d["decision_id"] + "-2",
                  rulebase=dict(d["rulebase"], sha256="f" * 64))
        again.append(prepare_entry(d2, c))
    with AuditTrail(v2) as trail:
        for start in range(0, n, 500):
            trail.record_prepared(again[start : start + 500])
    v2_twice = _file_bytes(v2) - v2_bytes

    v1 = workdir / "v1.sqlite3"
    write_v1_trail(v1, pairs)
    v1_bytes = _file_bytes(v1)
    t = time.perf_counter()
    report = migrate(v1)
    migrate_s = time.perf_counter() - t
    migrated_bytes = _file_bytes(v1)

    def per(total: float) -> int:
        return round(total / n)

    return {
        "cases": n,
        "canonical_bytes_per_decision": {
            "case": round(raw_case),
            "decision": round(raw_decision),
            "total": round(raw_case + raw_decision),
        },
        "v1_bytes_per_decision": per(v1_bytes),
        "v2_bytes_per_decision": per(v2_bytes),
        "v2_bytes_per_repeat_decision_same_case": per(v2_twice),
        "v2_after_migrate_bytes_per_decision": per(migrated_bytes),
        "prepared_bytes_per_decision_shipped": round(shipped),
        "worker_prepare_cpu_ms_per_decision": round(prepare_cpu * 1000, 3),
        "parent_record_cpu_ms_per_decision": round(record_cpu * 1000, 3),
        "verify_cpu_ms_per_decision": round(verify_cpu * 1000, 3),
        "migrate_seconds": round(migrate_s, 2),
        "migrated_entries": report.entries,
        "target_bytes_per_decision": TARGET_BYTES,
        "target_met": v2_bytes / n <= TARGET_BYTES,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "load_average": list(os.getloadavg()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=2000, help="cases (default 2000)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out" / "trail_size.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="calfrehab-trail-size-") as tmp:
        result = measure(args.n, Path(tmp))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
