"""Every example's report and handout, and a simulated 12-week course's, in
Chromium (the system's, by path) as a physiotherapist and a patient see
them: at 1280 and 390 px wide with no sideways scrolling, printed on A4
within its page budget, with no script to run, and through axe-core (the
npm package's own file, vendored in tests/vendor/axe-core) with no serious
or critical violation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import launched_chromium
from helpers import EXAMPLES, TESTS

from calfrehab.engine import api
from calfrehab.engine.report.sample import simulated_case

AXE = TESTS / "vendor" / "axe-core" / "axe.min.js"
CASES = sorted(EXAMPLES.glob("*.json"))
# Pages on A4: the handout is one; a report, a 12-week course's included, four.
HANDOUT_PAGES = 1
REPORT_PAGES = 4


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from launched_chromium()


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """name -> (report, handout) for every example and a 12-week course."""
    tmp = tmp_path_factory.mktemp("pages")
    course = tmp / "course-12-weeks.json"
    course.write_text(json.dumps(simulated_case(
        EXAMPLES / "achilles-midportion-two-leg-to-single-leg.json", 12)), encoding="utf-8")
    out: dict[str, tuple[Path, Path]] = {}
    for case in [*CASES, course]:
        report, handout = tmp / f"{case.stem}.report.html", tmp / f"{case.stem}.handout.html"
        api.write_report(case, report)
        api.write_handout(case, handout, clinic_name="Harbour Physio",
                          clinic_phone="020 7946 0000")
        out[case.stem] = (report, handout)
    return out


def _no_sideways_scroll(page: Any) -> None:
    wide = page.evaluate("document.documentElement.scrollWidth")
    assert wide <= page.viewport_size["width"], wide


def _pdf_pages(page: Any, path: Path) -> int:
    from pypdf import PdfReader

    page.emulate_media(media="print")
    page.pdf(path=str(path), format="A4", print_background=True)
    page.emulate_media(media="screen")
    return len(PdfReader(str(path)).pages)


def _axe(browser: Any, path: Path) -> list[str]:
    # The page's CSP forbids every script (as it should): this one context
    # bypasses it to inject axe; the page itself carries none.
    ctx = browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    page.goto(path.resolve().as_uri())
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document)")
    ctx.close()
    return [f"{v['id']} ({v['impact']}): {v['help']} - {len(v['nodes'])} node(s)"
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


@pytest.mark.parametrize("name", [c.stem for c in CASES] + ["course-12-weeks"])
def test_pages_read_print_and_pass_axe(browser: Any, pages: dict[str, tuple[Path, Path]],
                                       name: str, tmp_path: Path) -> None:
    report, handout = pages[name]
    for path in (report, handout):
        ctx = browser.new_context(java_script_enabled=False)
        page = ctx.new_page()
        requests: list[str] = []
        page.on("request", lambda r, seen=requests: seen.append(r.url))
        page.goto(path.resolve().as_uri())
        assert requests == [path.resolve().as_uri()]  # nothing else is fetched
        assert "<script" not in path.read_text(encoding="utf-8").lower()
        for width in (1280, 390):
            page.set_viewport_size({"width": width, "height": 900})
            _no_sideways_scroll(page)
        count = _pdf_pages(page, tmp_path / f"{path.stem}.pdf")
        if path == handout:
            assert count == HANDOUT_PAGES, f"handout prints on {count} pages"
        else:
            assert count <= REPORT_PAGES, f"report prints on {count} pages"
        ctx.close()
        assert _axe(browser, path) == []
    assert report.stat().st_size < 200_000


def test_a_handout_with_no_clinic_reads_at_390_px(browser: Any, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """No clinic configured: the handout leaves the clinic's line out (it
    said only "Your clinic"), and still reads at 390 px, prints on one page
    and passes axe."""
    monkeypatch.delenv("CALFREHAB_CONFIG", raising=False)
    case = tmp_path / "runner.json"
    case.write_bytes((EXAMPLES / "runner-stuck-on-two-leg.json").read_bytes())
    handout = tmp_path / "runner.handout.html"
    api.write_handout(case, handout)
    ctx = browser.new_context(java_script_enabled=False)
    page = ctx.new_page()
    page.goto(handout.resolve().as_uri())
    page.set_viewport_size({"width": 390, "height": 900})
    _no_sideways_scroll(page)
    assert page.locator(".clinic").count() == 0
    assert "Your clinic" not in page.inner_text("body")
    assert _pdf_pages(page, tmp_path / "runner.pdf") == HANDOUT_PAGES
    ctx.close()
    assert _axe(browser, handout) == []
