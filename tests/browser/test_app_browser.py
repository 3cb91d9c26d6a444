"""``calfrehab app`` in a real browser: Debian's Chromium through Playwright
(never a downloaded browser), the real app on a free loopback port.

A whole visit with no terminal and with scripts disabled (the app has none
to run): new patient, three sessions, the morning after, an assessment,
the decision recorded, an override with the clinician's own prescription,
accepting it, and the handout printed to PDF showing what was accepted. Two
browser contexts on one patient, where the second write is refused as
stale. A form stripped of its CSRF token is refused with 403. Every page
at 390 px has no horizontal scroll (axe-core's checks are in
test_app_axe.py).

Screenshots of each page are taken on the way; with
``CALFREHAB_APP_SCREENSHOTS=DIR`` they are kept there (docs/images).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from appserver import REPO, app_served
from browser import launched_chromium

from calfrehab.engine import api

CASE = "ACH-0311"




@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    yield from launched_chromium()


@pytest.fixture(scope="module")
def clinic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("browser-clinic")
    cases = home / "cases"
    cases.mkdir()
    for p in (REPO / "examples").glob("*.json"):
        shutil.copy(p, cases / p.name)
    trail = home / "trail.sqlite3"
    with app_served(cases, trail, home) as base:
        yield {"base": base, "cases": cases, "trail": trail, "home": home}


class Visit:
    """One browser context on the app; every request must stay on it."""

    def __init__(self, chromium: Any, base: str, *, scripts: bool = False,
                 width: int = 1280) -> None:
        self.base = base
        self.offsite: list[str] = []
        self.context = chromium.new_context(java_script_enabled=scripts,
                                            viewport={"width": width, "height": 900})
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()

    def _route(self, route: Any) -> None:
        if route.request.url.startswith(self.base + "/"):
            route.continue_()
        else:
            self.offsite.append(route.request.url)
            route.abort()

    def go(self, path: str) -> Any:
        response = self.page.goto(self.base + path)
        assert response is not None and response.status == 200, (path, response and
                                                                   response.status)
        return self.page

    def submit(self, label: str = "Save") -> Any:
        with self.page.expect_navigation():
            self.page.get_by_role("button", name=label).click()
        return self.page

    def close(self) -> None:
        assert not self.offsite, f"requests off the app: {self.offsite}"
        self.context.close()


def shot(page: Any, name: str, tmp: Path, *, whole: bool = True) -> None:
    path = tmp / f"app-{name}.png"
    page.screenshot(path=str(path), full_page=whole)
    assert path.stat().st_size > 5000
    keep = os.environ.get("CALFREHAB_APP_SCREENSHOTS")
    if keep:
        shutil.copy(path, Path(keep) / path.name)


def _iso(d: date) -> str:
    return d.isoformat()


def test_a_whole_visit_with_no_terminal_and_no_script(
        chromium: Any, clinic: dict[str, Any], tmp_path: Path) -> None:
    today = api.clinic_today()
    start = today - timedelta(days=9)
    v = Visit(chromium, clinic["base"])
    page = v.go("/patients/new")
    page.fill("#f-case_id", CASE)
    page.fill("#f-review_date", _iso(start))
    page.fill("#f-age_years", "41")
    page.fill("#f-body_mass_kg", "70")
    page.select_option("#f-sex", "female")
    page.select_option("#f-goal", "running")
    page.select_option("#f-kind", "achilles_midportion")
    page.select_option("#f-side", "left")
    page.select_option("#f-irritability", "moderate")
    page.select_option("#f-straight_knee", "two_leg_heel_raise")
    page.select_option("#f-bent_knee", "two_leg_bent_knee_heel_raise")
    page.select_option("#f-energy_storage", "none")
    shot(page, "new-patient", tmp_path)
    page = v.submit()
    assert page.url.endswith(f"/patients/{CASE}?done=new")
    assert "New case written" in page.content()

    for n, day in enumerate((start + timedelta(days=1), start + timedelta(days=3),
                             start + timedelta(days=5))):
        page = v.go(f"/patients/{CASE}/session")
        page.fill("#f-date", _iso(day))
        page.fill("#f-straight_knee_pain", str([2, 2, 1][n]))
        page.fill("#f-bent_knee_pain", "1")
        if n == 0:
            shot(page, "log-session", tmp_path)
        page = v.submit()
        assert "Session logged" in page.content(), page.content()[:2000]

    page = v.go(f"/patients/{CASE}/morning")
    assert page.input_value("#f-date") == _iso(start + timedelta(days=5))
    page.fill("#f-morning_pain", "1")
    page.fill("#f-stiffness_min", "5")
    page = v.submit()
    assert "Next-morning pain logged" in page.content()

    page = v.go(f"/patients/{CASE}/assessment")
    page.fill("#f-date", _iso(start + timedelta(days=6)))
    page.fill("#f-heel_raise_involved", "22")
    page.fill("#f-heel_raise_uninvolved", "27")
    page.fill("#f-pain_at_rest", "1")
    page.fill("#f-visa_a", "70")
    page = v.submit()
    assert "Assessment added" in page.content()

    case = api.validate_path(clinic["cases"] / f"{CASE}.json")
    assert len(case.sessions) == 3 and len(case.assessments) == 1
    assert case.sessions[-1].pain_next_morning == 1

    page = v.submit("Decide and record")
    assert "Decision recorded" in page.content()
    shot(page, "patient", tmp_path)
    # The explanation opens in place, without a script: <details>.
    summary = page.get_by_text("How this was decided (what the rules found, in order)")
    summary.click()
    assert page.locator("details.explain").first.get_attribute("open") is not None

    page.fill("#o-reason", "Achilles still sore on stairs: one more week on two legs, 3 x 12")
    page.select_option("#o-track", "straight_knee")
    page.select_option("#o-decision", "hold")
    page.select_option("#o-exercise", "two_leg_heel_raise")
    page.fill("#o-sets", "3")
    page.fill("#o-reps", "12")
    page = v.submit("Record override")
    assert "Override recorded" in page.content()
    assert "one more week on two legs" in page.content()

    page = v.submit("Accept with the override")
    assert "Accepted: the programme" in page.content(), page.content()[:3000]
    program = api.validate_path(clinic["cases"] / f"{CASE}.json").program
    assert program.straight_knee is not None and program.bent_knee is not None
    assert (program.straight_knee.exercise, program.straight_knee.sets,
            program.straight_knee.reps) == ("two_leg_heel_raise", 3, 12)  # the override's
    assert program.bent_knee.exercise == "single_leg_bent_knee_heel_raise"  # as decided

    with api.open_trail(clinic["trail"]) as trail:
        rows = api.list_audit(trail, case_id=CASE)
    assert [(r["kind"], r["clinician"]) for r in rows] == [
        ("decision", "local"), ("override", "local"), ("accepted", "local")]

    handout = v.go(f"/patients/{CASE}/handout")
    pdf = tmp_path / "handout.pdf"
    handout.pdf(path=str(pdf), format="A4", print_background=True)
    from pypdf import PdfReader

    text = " ".join(p.extract_text() for p in PdfReader(str(pdf)).pages)
    words = " ".join(text.split()).lower()
    assert "your left leg" in words and "heel raise" in words, words[:1500]
    assert "ach-0311" in words
    # The handout says the physiotherapist adjusted the plan, and why.
    assert "your physiotherapist adjusted this plan" in words
    assert "one more week on two legs" in words
    v.close()


def test_import_a_clinic_csv_in_the_browser(
        chromium: Any, clinic: dict[str, Any], tmp_path: Path) -> None:
    lines = (REPO / "examples" / "import" / "clinic-export-template.csv").read_text().splitlines()
    bad = lines[1].replace("CLINIC-0001", "CLINIC-0077").replace(",2,1,10,", ",12,1,10,")
    upload = tmp_path / "clinic-export.csv"
    upload.write_text("\n".join([*lines, bad]) + "\n")
    v = Visit(chromium, clinic["base"])
    page = v.go("/import")
    page.set_input_files("#csv", str(upload))
    page = v.submit("Import")
    text = page.content()
    assert "Rows not imported (1)" in text and "CLINIC-0077" not in [
        p.stem for p in clinic["cases"].glob("*.json")]
    assert (clinic["cases"] / "CLINIC-0001.json").is_file()
    shot(page, "import", tmp_path)
    v.close()


def test_two_clinicians_on_one_patient_the_stale_write_is_refused(
        chromium: Any, clinic: dict[str, Any]) -> None:
    name = "runner-stuck-on-two-leg"
    path = clinic["cases"] / f"{name}.json"
    a, b = Visit(chromium, clinic["base"]), Visit(chromium, clinic["base"])
    day = _iso(api.clinic_today() - timedelta(days=1))
    for v in (a, b):
        page = v.go(f"/patients/{name}/assessment")
        page.fill("#f-date", day)
    b.page.fill("#f-pain_at_rest", "2")
    assert "Assessment added" in b.submit().content()
    written = path.read_bytes()
    a.page.fill("#f-pain_at_rest", "6")
    a.page.fill("#f-hop_pain", "4")
    page = a.submit()
    assert "changed since you opened it: reload" in page.content()
    assert path.read_bytes() == written
    # What A typed is still in the form, now carrying the file's new hash.
    assert page.input_value("#f-pain_at_rest") == "6"
    assert page.input_value("#f-hop_pain") == "4"
    doc = json.loads(written)
    assert [x.get("pain_at_rest") for x in doc["assessments"]][-1] == 2
    a.close()
    b.close()


def test_a_form_without_its_csrf_token_is_refused(
        chromium: Any, clinic: dict[str, Any]) -> None:
    name = "plantar-first-visit-no-sessions"
    before = (clinic["cases"] / f"{name}.json").read_bytes()
    v = Visit(chromium, clinic["base"], scripts=True)
    page = v.go(f"/patients/{name}/assessment")
    page.fill("#f-pain_at_rest", "2")
    page.evaluate("document.querySelector('main form input[name=csrf]').remove()")
    with page.expect_navigation():
        page.get_by_role("button", name="Save").click()
    assert "Refused: no CSRF token" in page.content()
    assert (clinic["cases"] / f"{name}.json").read_bytes() == before
    v.close()


PAGES = ["/patients", f"/patients/{CASE}", "/patients/new", f"/patients/{CASE}/session",
         f"/patients/{CASE}/morning", f"/patients/{CASE}/assessment", "/import", "/audit",
         "/audit/replay", "/rules"]


def test_at_390_px_no_page_scrolls_sideways(
        chromium: Any, clinic: dict[str, Any], tmp_path: Path) -> None:
    v = Visit(chromium, clinic["base"], width=390)
    made = (clinic["cases"] / f"{CASE}.json").is_file()  # by the visit above, when it ran
    for path in PAGES:
        page = v.go(path if made else path.replace(CASE, "plantar-next-morning-jump-flare"))
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, (path, width)
        if path in ("/patients", f"/patients/{CASE}"):
            shot(page, "phone-" + ("patients" if path == "/patients" else "patient"),
                 tmp_path)
    v.close()
    # The patient list at a desk, once the visit above has made its patient.
    v = Visit(chromium, clinic["base"])
    shot(v.go("/patients"), "patients", tmp_path)
    v.close()
