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

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

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
    ["handout", "ach-0211.json", "-o", "handout.html"],
]


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
            browser.close()


if __name__ == "__main__":
    main()
