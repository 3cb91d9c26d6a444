"""How fast ``calfrehab app`` renders its two busiest pages: a patient with
12 weeks of sessions, and the patient list of 1,000 cases (each decided
once into the trail, so every row has a last review and badges).

Each page is requested through the app itself (Starlette's test client:
routing, sign-in, the handler, the template; no socket), many times, and
the p50 and p95 of the wall time are reported, twice:

- *opened again*: the case file (or the directory) has not changed since
  the page was last shown, so the app's per-version caches answer (the
  decision, the charts, the list's summaries and the trail's index);
- *after a change*: every request starts from empty caches, as the first
  view after a session is logged (the patient is decided and charted
  again; the list reads every case file and the whole trail again).

Targets (issue 26): p95 at most 150 ms for the patient page, 400 ms for
the list, on the 2-core benchmark machine.

    python benchmarks/app_render.py [--cases 1000] [--repeat 40] [--write docs/performance.md]

``--write`` replaces the section between ``<!-- app-render:begin -->`` and
``<!-- app-render:end -->`` in that page (added at its end the first time).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from casegen import generate_case

from calfrehab.engine import api

BEGIN, END = "<!-- app-render:begin -->", "<!-- app-render:end -->"
PATIENT = "twelve-weeks"
TARGETS = {"patient": 150.0, "list": 400.0}


def build(root: Path, n: int, seed: int) -> tuple[Path, Path]:
    cases = root / "cases"
    cases.mkdir()
    engine = api.prepare()
    decided = []
    for i in range(n):
        doc = generate_case(i, seed=seed)
        (cases / f"{doc['case_id']}.json").write_text(json.dumps(doc, indent=2) + "\n")
        decided.append(api.decide_document(doc, engine, doc["case_id"]))
    doc = twelve_weeks(n, seed)
    (cases / f"{PATIENT}.json").write_text(json.dumps(doc, indent=2) + "\n")
    decided.append(api.decide_document(doc, engine, PATIENT))
    trail = root / "trail.sqlite3"
    for start in range(0, len(decided), 500):
        api.record(decided[start:start + 500], trail, "benchmark")
    return cases, trail


def twelve_weeks(start: int, seed: int) -> dict[str, Any]:
    """A tendinopathy case with 36 sessions spread over 12 weeks (three a
    week) up to its review date."""
    i = start
    while True:
        doc = generate_case(i, seed=seed, sessions=36)
        if doc["condition"]["kind"] in ("achilles_midportion", "plantar_fasciopathy"):
            break
        i += 1
    review = date.fromisoformat(doc["review_date"])
    first = review - timedelta(days=83)
    for k, session in enumerate(doc["sessions"]):
        session["date"] = (first + timedelta(days=(k * 84) // 36)).isoformat()
    onset = doc["condition"].get("onset_date")
    if onset is None or date.fromisoformat(onset) > first - timedelta(days=14):
        doc["condition"]["onset_date"] = (first - timedelta(days=14)).isoformat()
    doc["case_id"] = "TWELVE-WEEKS"
    api.validate_document(doc, "twelve-weeks")
    return doc


def timed(get: Callable[[], Any], reset: Callable[[], None] | None, repeat: int
          ) -> list[float]:
    out = []
    get()  # the first request also imports and compiles: not a page view
    for _ in range(repeat):
        if reset is not None:
            reset()
        start = time.perf_counter()
        response = get()
        out.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.status_code
    return out


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


def measure(n: int, repeat: int, seed: int) -> dict[str, Any]:
    from starlette.testclient import TestClient

    from calfrehab.app.settings import AppSettings
    from calfrehab.app.web import create_app

    with tempfile.TemporaryDirectory(prefix="calfrehab-bench-app-") as tmp:
        t0 = time.perf_counter()
        cases, trail = build(Path(tmp), n, seed)
        built = time.perf_counter() - t0
        app = create_app(AppSettings(cases=cases, audit=trail))
        state = app.state.app
        twelve = json.loads((cases / f"{PATIENT}.json").read_text())["sessions"]
        sessions = f"{len(twelve)} sessions from {twelve[0]['date']} to {twelve[-1]['date']}"

        def cold_patient() -> None:
            state._decided.clear()
            state._charts.clear()

        def cold_list() -> None:
            state.cases._summaries.clear()
            state.trail._head = None

        with TestClient(app) as client:
            def page() -> Any:
                return client.get(f"/patients/{PATIENT}")

            def listing() -> Any:
                return client.get("/patients")

            results = {
                "patient_warm": timed(page, None, repeat),
                "patient_cold": timed(page, cold_patient, repeat),
                "list_warm": timed(listing, None, max(10, repeat // 2)),
                "list_cold": timed(listing, cold_list, max(5, repeat // 4)),
            }
            rows = listing().text.count("<tr>") - 1  # less the header row
    return {
        "cases": n, "rows": rows, "sessions": sessions, "repeat": repeat,
        "build_s": built,
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
        "load": os.getloadavg(),
        "ms": {k: {"p50": statistics.median(v), "p95": p95(v), "max": max(v)}
               for k, v in results.items()},
    }


def section(r: dict[str, Any]) -> str:
    ms = r["ms"]

    def row(name: str, key: str, target: float | None) -> str:
        m = ms[key]
        verdict = "" if target is None else ("met" if m["p95"] <= target else "**not met**")
        tgt = f"≤ {target:.0f} ms" if target is not None else "—"
        return (f"| {name} | {m['p50']:.0f} | {m['p95']:.0f} | {m['max']:.0f} | {tgt} | "
                f"{verdict} |")

    load = " ".join(f"{x:.2f}" for x in r["load"])
    return "\n".join([
        BEGIN,
        "## The app's pages (`calfrehab app`)",
        "",
        "Written by `python benchmarks/app_render.py --write docs/performance.md`. Each page is",
        "requested through the app (Starlette's test client: routing, sign-in, handler,",
        "template, no socket) and timed end to end. *Opened again*: the case file or the",
        "directory has not changed since the page was last shown, so the app's caches per",
        "file version answer. *After a change*: every request starts from empty caches, as",
        "the first view after a session is logged (decided and charted again; the list",
        "reads every case file and the whole trail again).",
        "",
        f"{r['cases']:,} generated cases (benchmarks/casegen.py), each decided once into the",
        f"trail; the patient has {r['sessions']} (12 weeks, three a week).",
        f"{r['repeat']} requests per patient-page row. {r['when']}, {r['cores']} cores,",
        f"load average at the end {load}.",
        "",
        "| page | p50 ms | p95 ms | max ms | target (p95) | |",
        "|---|---:|---:|---:|---|---|",
        row("patient, 12 weeks, opened again", "patient_warm", TARGETS["patient"]),
        row("patient, 12 weeks, after a change", "patient_cold", TARGETS["patient"]),
        row(f"patient list, {r['rows']:,} rows, opened again", "list_warm", TARGETS["list"]),
        row(f"patient list, {r['rows']:,} rows, after a change", "list_cold", None),
        "",
        END,
    ])


def kept_section(page: Path, rendered: str) -> str:
    """``rendered`` (the page benchmarks/run.py writes whole) with this
    benchmark's section of ``page`` as it stands kept at its end."""
    current = page.read_text(encoding="utf-8") if page.exists() else ""
    if BEGIN not in current or END not in current or BEGIN in rendered:
        return rendered
    ours = BEGIN + current.split(BEGIN, 1)[1].split(END, 1)[0] + END
    return rendered.rstrip("\n") + "\n\n" + ours + "\n"


def write(page: Path, text: str) -> None:
    current = page.read_text(encoding="utf-8") if page.exists() else ""
    if BEGIN in current and END in current:
        head, rest = current.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        new = head + text + tail
    else:
        new = current.rstrip("\n") + "\n\n" + text + "\n"
    page.write_text(new, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--seed", type=int, default=26)
    parser.add_argument("--write", type=Path, help="page to write the section into")
    args = parser.parse_args(argv)
    result = measure(args.cases, args.repeat, args.seed)
    text = section(result)
    print(text)
    if args.write:
        write(args.write, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
