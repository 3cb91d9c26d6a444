#!/usr/bin/env python
"""Take the report and handout screenshots in docs/images/ with headless
Chromium (the system's, driven by Playwright; nothing downloads a browser).

    python scripts/screenshots.py

Builds the tutorial's case (ACH-0211) with new / assess / log in a
temporary directory, decides it into a trail of its own, writes the report
and the handout, and saves a full-page screenshot of each. Needs the test
extras (playwright) and Debian's chromium.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "images"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
# The calfrehab installed beside this Python (as scripts/capture_docs.py runs it).
CALFREHAB = [str(Path(sys.executable).parent / "calfrehab")]
# The tutorial's commands (docs/templates/tutorial.tmpl.md, sections 1 to 3).
COMMANDS = [
    ["new", "ach-0211.json", "--case-id", "ACH-0211", "--review-date", "2026-02-26",
     "--age-years", "38", "--body-mass-kg", "64", "--sex", "female", "--goal", "running",
     "--kind", "achilles_midportion", "--side", "left", "--onset-date", "2026-01-05",
     "--red-flags", "none", "--straight-knee", "two_leg_heel_raise", "--bent-knee", "none",
     "--energy-storage", "none", "--no-input"],
    ["assess", "ach-0211.json", "--date", "2026-02-26", "--heel-raise-involved", "12",
     "--heel-raise-uninvolved", "27", "--pain-at-rest", "1", "--visa-a", "61", "--no-input"],
    *[cmd for day, pain, morning, stiff in (("2026-03-04", "3", "2", "15"),
                                             ("2026-03-07", "2", "2", "10"),
                                             ("2026-03-10", "2", "1", "10"))
      for cmd in (["log", "ach-0211.json", "--date", day, "--straight-knee-pain", pain,
                   "--no-input"],
                  ["log", "ach-0211.json", "--morning", "--morning-pain", morning,
                   "--stiffness-min", stiff, "--no-input"])],
    ["next", "ach-0211.json", "--audit", "trail.sqlite3", "--clinician", "J. Lind"],
    ["report", "ach-0211.json", "--audit", "trail.sqlite3", "-o", "report.html"],
    ["handout", "ach-0211.json", "--clinic-name", "Northside Physio", "--clinic-phone",
     "020 7946 0000", "-o", "handout.html"],
]
# A 12-week course (the simulator's patient from an example's intake) for the
# report at desk and phone width, and a calf strain's handout.
COURSE_INTAKE = ROOT / "examples" / "achilles-midportion-two-leg-to-single-leg.json"
HANDOUT_CASE = ROOT / "examples" / "calf-strain-gastrocnemius-hops-to-running.json"
WIDTHS = (1280, 390)


def main() -> None:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("no chromium on PATH (apt-get install chromium)")
    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for args in COMMANDS:
            subprocess.run([*CALFREHAB, *args], cwd=tmp, check=True, stdout=subprocess.DEVNULL)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            for name in ("report", "handout"):
                page = browser.new_page(viewport={"width": 1000, "height": 800})
                page.goto((Path(tmp) / f"{name}.html").as_uri())
                page.wait_for_load_state("load")
                page.screenshot(path=str(IMAGES / f"{name}.png"), full_page=True)
                print(f"wrote {IMAGES / f'{name}.png'}")
                page.close()
            _widths(browser, Path(tmp))
            browser.close()


def _widths(browser: Any, tmp: Path) -> None:
    """report-1280.png, report-390.png, handout-1280.png, handout-390.png,
    with scripts disabled (the pages have none)."""
    from calfrehab.engine import api
    from calfrehab.engine.report.sample import simulated_case

    course = tmp / "course.json"
    course.write_text(json.dumps(simulated_case(COURSE_INTAKE, 12)), encoding="utf-8")
    api.write_report(course, tmp / "course-report.html", author="J. Lind")
    api.write_handout(HANDOUT_CASE, tmp / "course-handout.html",
                      clinic_name="Northside Physio", clinic_phone="020 7946 0000")
    for name in ("report", "handout"):
        for width in WIDTHS:
            ctx = browser.new_context(java_script_enabled=False,
                                      viewport={"width": width, "height": 900})
            page = ctx.new_page()
            page.goto((tmp / f"course-{name}.html").as_uri())
            page.screenshot(path=str(IMAGES / f"{name}-{width}.png"), full_page=True)
            print(f"wrote {IMAGES / f'{name}-{width}.png'}")
            ctx.close()


if __name__ == "__main__":
    main()
