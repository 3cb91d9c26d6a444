"""The report and the handout in a real browser: headless Chromium from the
system's packages (Debian's ``chromium``), driven by Playwright.

Nothing here downloads a browser: Playwright launches the system's
Chromium by path. ``scripts/dev.py test`` installs it where it can (root on
Debian); where no browser can be had these tests skip with a loud reason,
except in CI (``CI=true``), where a missing browser is a failure.

The case is built the way a new user builds one (new, log, assess), decided
with ``next`` into a trail, overridden once, and reported with ``--audit``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import launched_chromium
from click.testing import CliRunner

from calfrehab.cli.main import cli
from calfrehab.engine import api
from calfrehab.engine.casefile.validation import read_case_file
from calfrehab.engine.report.handout import plain_words
from calfrehab.engine.vocabulary import EXERCISES


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from launched_chromium()


class Page:
    """A page opened from disk that records console errors, page errors
    and every request it makes; requests other than the file are blocked."""

    def __init__(self, browser: Any, path: Path) -> None:
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page = browser.new_page(viewport={"width": 1100, "height": 900})
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        url = path.resolve().as_uri()

        def route(r: Any) -> None:
            self.requests.append(r.request.url)
            if r.request.url == url:
                r.continue_()
            else:
                r.abort()

        self.page.route("**/*", route)
        self.page.goto(url)
        self.page.wait_for_load_state("load")
        self.url = url

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def offsite(self) -> list[str]:
        return [u for u in self.requests if u != self.url]


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A case built with new / log / assess, decided twice, overridden once."""
    tmp = tmp_path_factory.mktemp("course")
    case, trail = tmp / "mia.json", tmp / "trail.sqlite3"
    run("new", str(case), "--case-id", "MIA-7", "--review-date", "2026-11-02",
        "--age-years", "38", "--body-mass-kg", "64", "--sex", "female", "--kind",
        "achilles_midportion", "--side", "right", "--bent-knee",
        "two_leg_bent_knee_heel_raise", "--no-input")
    sessions = [("2026-11-03", "15,15,15", "2", "13,12,10", "3", "1"),
                ("2026-11-05", "15,15,15", "3", "15,15,12", "2", "2"),
                ("2026-11-07", "15,15,15", "1", "15,15,15", "1", "2")]
    for day, sk_done, sk_pain, bk_done, bk_pain, morning in sessions:
        run("log", str(case), "--date", day, "--straight-knee-done", sk_done,
            "--straight-knee-pain", sk_pain, "--bent-knee-done", bk_done,
            "--bent-knee-pain", bk_pain, "--no-input")
        run("log", str(case), "--morning", "--morning-pain", morning, "--stiffness-min", "5",
            "--no-input")
        run("next", str(case), "--audit", str(trail), "--clinician", "A. Berg")
    run("assess", str(case), "--date", "2026-11-08", "--heel-raise-involved", "17",
        "--heel-raise-uninvolved", "26", "--visa-a", "61", "--no-input")
    run("assess", str(case), "--date", "2026-11-09", "--heel-raise-involved", "19",
        "--heel-raise-uninvolved", "26", "--visa-a", "66", "--no-input")
    decided = json.loads(run("next", str(case), "--json", "--audit", str(trail)))
    run("audit", "override", decided["decision_id"][:12], "--audit", str(trail),
        "--clinician", "A. Berg", "--reason", "tendon sore on palpation, keep the dose",
        "--track", "straight_knee", "--decision", "hold")
    (tmp / "decision.json").write_text(json.dumps(decided), encoding="utf-8")
    report, handout = tmp / "report.html", tmp / "handout.html"
    run("report", str(case), "--audit", str(trail), "-o", str(report))
    run("handout", str(case), "-o", str(handout))
    return {"case": case, "report": report, "handout": handout, "dir": tmp}


def _expected_series(case_path: Path) -> dict[str, list[tuple[str, float]]]:
    """What each chart must plot, read straight from the case file."""
    case, _ = read_case_file(case_path)
    out: dict[str, list[tuple[str, float]]] = {}
    for s in case.sessions_by_date():
        day = s.date.isoformat()
        for ex in s.exercises:
            track, rung = EXERCISES[ex.exercise]
            out.setdefault(f"rung:{track}", []).append((day, rung))
            out.setdefault(f"pain:{track}", []).append((day, ex.pain_during))
        if s.pain_next_morning is not None:
            out.setdefault("pain:morning", []).append((day, s.pain_next_morning))
    for a in case.assessments_by_date():
        day = a.date.isoformat()
        if a.heel_raise_test is not None:
            hrt = a.heel_raise_test
            out.setdefault("hr:involved", []).append((day, hrt.involved))
            if hrt.uninvolved is not None:
                out.setdefault("hr:uninvolved", []).append((day, hrt.uninvolved))
                out.setdefault("scores:lsi", []).append(
                    (day, round(100 * hrt.involved / hrt.uninvolved, 1)))
        if a.visa_a is not None:
            out.setdefault("scores:visa", []).append((day, a.visa_a))
    return out


def _plotted(page: Any, chart_id: str) -> dict[str, list[tuple[str, float]]]:
    """Each series' points as drawn: the SVG markers' dates and values."""
    rows: list[list[str]] = page.evaluate(
        """id => Array.from(document.querySelectorAll('#' + id + ' .pt')).map(
               e => [e.dataset.series, e.dataset.x, e.dataset.y])""", chart_id)
    out: dict[str, list[tuple[str, float]]] = {}
    for series, x, y in rows:
        out.setdefault(series, []).append((x, float(y)))
    return out


def test_report_opens_offline_and_plots_the_case_values(browser: Any,
                                                        course: dict[str, Path]) -> None:
    course_files = course
    page = Page(browser, course["report"])
    assert page.errors == []
    assert page.offsite() == []
    assert page.page.evaluate("document.scripts.length") == 0
    expected = _expected_series(course["case"])

    assert _plotted(page.page, "chart-rung") == {
        "straight_knee": expected["rung:straight_knee"],
        "bent_knee": expected["rung:bent_knee"],
    }
    pain = _plotted(page.page, "chart-pain")
    assert pain["straight_knee"] == expected["pain:straight_knee"]
    assert pain["bent_knee"] == expected["pain:bent_knee"]
    assert _plotted(page.page, "chart-morning") == {"morning": expected["pain:morning"]}
    assert _plotted(page.page, "chart-heel-raise") == {
        "involved": expected["hr:involved"], "uninvolved": expected["hr:uninvolved"]}
    assert _plotted(page.page, "chart-scores") == {
        "lsi": expected["scores:lsi"], "visa_a": expected["scores:visa"]}

    # The projected course plots the simulator's rungs, week by week.
    simulated = api.simulate(course_files["case"], weeks=12)
    projected = _plotted(page.page, "chart-projection")
    for track in ("straight_knee", "bent_knee"):
        want = [(r.review_date.isoformat(), float(EXAMPLES_RUNG(ex))) for r in simulated.rows
                if (ex := r.tracks[track].exercise) is not None]
        assert projected[track] == want

    # Every chart is drawn, with its markers inside the drawing.
    for chart_id in ("chart-rung", "chart-pain", "chart-heel-raise", "chart-scores",
                     "chart-projection", "chart-morning", "chart-stiffness"):
        assert page.page.locator(f"#{chart_id} svg.chart-svg").count() == 1
        assert page.page.locator(f"#{chart_id} .pt").count() >= 2
    # The pain bands are labelled in words (readable without colour).
    svg_text = page.page.locator("#chart-pain").inner_text()
    assert "0–3 safe" in svg_text and "4–5 acceptable" in svg_text

    text = page.page.locator("body").inner_text()
    assert "tendon sore on palpation, keep the dose" in text  # the override
    assert "A. Berg" in text
    assert "Full trail: calfrehab explain mia.json" in text
    page.page.close()


def EXAMPLES_RUNG(exercise: str) -> int:
    return EXERCISES[exercise][1]


def test_report_prints_on_a4_with_its_text(browser: Any, course: dict[str, Path]) -> None:
    from pypdf import PdfReader

    page = Page(browser, course["report"])
    pdf = course["dir"] / "report.pdf"
    page.page.pdf(path=str(pdf), format="A4", print_background=True)
    page.page.close()
    reader = PdfReader(str(pdf))
    assert 1 <= len(reader.pages) <= 4
    for p in reader.pages:  # A4 is 210 × 297 mm, 595.3 × 841.9 points
        assert abs(float(p.mediabox.width) - 595.3) < 1.5
        assert abs(float(p.mediabox.height) - 841.9) < 1.5
    text = re.sub(r"\s+", " ", " ".join(p.extract_text() for p in reader.pages))
    for needle in ("Course report: case MIA-7", "Decision at this review", "Sessions",
                   "Recorded decisions and overrides", "tendon sore on palpation",
                   "Single-leg heel-raise test"):
        assert needle in text, needle
    assert page.errors == [] and page.offsite() == []


def test_handout_is_plain_and_scriptless(browser: Any, course: dict[str, Path]) -> None:
    page = Page(browser, course["handout"])
    assert page.errors == [] and page.offsite() == []
    assert page.page.evaluate("document.scripts.length") == 0
    text = page.page.locator("body").inner_text()
    decision = json.loads((course["dir"] / "decision.json").read_text(encoding="utf-8"))
    nexts = [t["next"] for t in decision["tracks"].values() if t["next"]]
    assert nexts, "the course should leave something to do"
    for n in nexts:
        assert n["unit"] == "reps"
        assert f"{n['sets']} sets of {n['reps']} repetitions" in text
    assert "0 to 3 out of 10 is fine" in text
    assert "Stop and call the clinic" in text and "your right leg" in text
    lowered = text.lower()
    for word in plain_words().jargon:
        assert re.search(rf"\b{re.escape(word.lower())}\b", lowered) is None, word
    assert "@" not in text and "_" not in text  # no rule ids, no field names
    shot = course["dir"] / "handout.png"
    page.page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    page.page.close()
