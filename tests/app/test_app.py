"""``calfrehab app`` over HTTP: the real app on a free loopback port,
called as a browser would (cookies, forms), checking what it writes to the
case files and the trail, and what it refuses."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from appserver import REPO, app_served, hidden, isolated_env

from calfrehab.engine import api

EXAMPLES = REPO / "examples"
CASE = "plantar-next-morning-jump-flare"


@pytest.fixture(scope="module")
def clinic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("clinic")
    cases = home / "cases"
    cases.mkdir()
    for p in EXAMPLES.glob("*.json"):
        shutil.copy(p, cases / p.name)
    trail = home / "trail.sqlite3"
    with app_served(cases, trail, home) as base:
        yield {"base": base, "cases": cases, "trail": trail, "home": home}


@pytest.fixture
def browser(clinic: dict[str, Any]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=clinic["base"], timeout=60, follow_redirects=True) as client:
        yield client


def test_every_page_answers_with_a_csp_that_allows_no_script(
        browser: httpx.Client) -> None:
    for path in ("/patients", f"/patients/{CASE}", "/patients/new", f"/patients/{CASE}/session",
                 f"/patients/{CASE}/morning", f"/patients/{CASE}/assessment", "/rules",
                 "/audit", "/audit/replay", "/import", f"/patients/{CASE}/handout"):
        r = browser.get(path)
        assert r.status_code == 200, (path, r.text[:500])
        csp = r.headers["content-security-policy"]
        assert "script-src 'none'" in csp, path
        assert "<script" not in r.text.lower(), path
        assert r.headers["cache-control"] == "no-store"
        assert r.headers["x-frame-options"] == "DENY"


def test_the_session_cookie_is_httponly_and_samesite_strict(clinic: dict[str, Any]) -> None:
    r = httpx.get(clinic["base"] + "/patients")
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert "secure" not in cookie  # plain http on loopback: a Secure cookie would not come back


def test_search_is_escaped_and_filters(browser: httpx.Client) -> None:
    r = browser.get("/patients", params={"q": "<script>alert(1)</script>"})
    assert "<script>alert(1)</script>" not in r.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text
    r = browser.get("/patients", params={"q": "rupture"})
    assert "ATR-0061" in r.text and "PF-0188" not in r.text


def test_a_post_without_the_csrf_token_is_refused_and_writes_nothing(
        browser: httpx.Client, clinic: dict[str, Any]) -> None:
    path = clinic["cases"] / f"{CASE}.json"
    before = path.read_bytes()
    page = browser.get(f"/patients/{CASE}/morning").text
    form = {"sha256": hidden(page, "sha256"), "morning_pain": "1"}
    r = browser.post(f"/patients/{CASE}/morning", data=form)
    assert r.status_code == 403
    r = browser.post(f"/patients/{CASE}/morning", data={**form, "csrf": "forged"})
    assert r.status_code == 403
    # A request with no session at all (another site's form) is refused too.
    r = httpx.post(clinic["base"] + f"/patients/{CASE}/morning",
                   data={**form, "csrf": hidden(page, "csrf")})
    assert r.status_code == 403
    assert path.read_bytes() == before


def test_a_write_to_a_case_changed_since_the_form_was_opened_is_refused(
        browser: httpx.Client, clinic: dict[str, Any]) -> None:
    path = clinic["cases"] / "runner-stuck-on-two-leg.json"
    page = browser.get("/patients/runner-stuck-on-two-leg/assessment").text
    csrf, sha = hidden(page, "csrf"), hidden(page, "sha256")
    # Someone else adds an assessment meanwhile (another clinician, the CLI).
    doc = json.loads(path.read_text())
    doc["assessments"].append({"date": doc["review_date"], "pain_at_rest": 2})
    path.write_text(json.dumps(doc, indent=2) + "\n")
    changed = path.read_bytes()
    r = browser.post("/patients/runner-stuck-on-two-leg/assessment",
                     data={"csrf": csrf, "sha256": sha, "date": doc["review_date"],
                           "pain_at_rest": "7", "hop_pain": "3"})
    assert r.status_code == 409
    assert "changed since you opened it: reload" in r.text
    assert path.read_bytes() == changed
    # Nothing typed is lost: the form comes back with the answers in it.
    assert 'name="pain_at_rest" type="text" value="7"' in r.text
    assert 'name="hop_pain" type="text" value="3"' in r.text


def test_a_write_waits_for_the_case_files_lock_then_sees_the_change(
        browser: httpx.Client, clinic: dict[str, Any]) -> None:
    # Another calfrehab process (the command line) holds the file's lock and
    # writes while the app's save is on its way: the app waits for the lock,
    # then compares, and refuses rather than writing on top of what it never
    # showed.
    import threading
    import time

    path = clinic["cases"] / "calf-strain-soleus-pain-3-not-pain-free.json"
    page = browser.get(f"/patients/{path.stem}/assessment").text
    doc = json.loads(path.read_text())
    answers: list[httpx.Response] = []
    post = threading.Thread(target=lambda: answers.append(browser.post(
        f"/patients/{path.stem}/assessment", data={
            "csrf": hidden(page, "csrf"), "sha256": hidden(page, "sha256"),
            "date": doc["review_date"], "pain_at_rest": "3"})))
    with api.case_lock(path):
        post.start()
        time.sleep(0.5)  # the post reaches the lock meanwhile (or after: 409 either way)
        doc["assessments"].append({"date": doc["review_date"], "pain_at_rest": 1})
        path.write_text(json.dumps(doc, indent=2) + "\n")
        changed = path.read_bytes()
    post.join(60)
    assert answers and answers[0].status_code == 409
    assert "changed since you opened it: reload" in answers[0].text
    assert path.read_bytes() == changed


def test_new_patient_shows_each_error_beside_its_field_and_writes_nothing(
        browser: httpx.Client, clinic: dict[str, Any]) -> None:
    page = browser.get("/patients/new").text
    form = {"csrf": hidden(page, "csrf"), "case_id": "NEW-0001", "review_date": "2026-11-02",
            "age_years": "338", "body_mass_kg": "heavy", "goal": "running",
            "kind": "achilles_midportion", "side": "left", "irritability": "moderate",
            "straight_knee": "two_leg_heel_raise", "bent_knee": "none",
            "energy_storage": "none"}
    r = browser.post("/patients/new", data=form)
    assert r.status_code == 422
    assert 'id="age_years-error">338 is too high; expected a whole number from 12 to 100' in r.text
    assert 'id="body_mass_kg-error">`heavy` is not a number' in r.text
    assert not (clinic["cases"] / "NEW-0001.json").exists()
    r = browser.post("/patients/new", data={**form, "age_years": "38", "body_mass_kg": "64"})
    assert r.status_code == 200, r.text[:800]
    case = api.validate_path(clinic["cases"] / "NEW-0001.json")
    assert case.patient.age_years == 38 and case.program.straight_knee is not None
    assert case.program.straight_knee.sets == 3  # the rules' starting dose, not typed


def test_decide_and_override_record_the_signed_in_clinician(
        browser: httpx.Client, clinic: dict[str, Any]) -> None:
    page = browser.get(f"/patients/{CASE}").text
    assert "Decide and record" in page
    r = browser.post(f"/patients/{CASE}/decide",
                     data={"csrf": hidden(page, "csrf"), "sha256": hidden(page, "sha256")})
    assert r.status_code == 200 and "Decision recorded" in r.text
    decision_id = hidden(r.text, "decision_id")
    r = browser.post(f"/patients/{CASE}/override", data={
        "csrf": hidden(r.text, "csrf"), "sha256": hidden(r.text, "sha256"),
        "decision_id": decision_id, "reason": "keeps her single-leg raises: <b>pain settled</b>",
        "track": "straight_knee", "decision": "hold", "exercise": "pogo_hops", "sets": "3",
        "reps": "12"})
    assert r.status_code == 422  # pogo hops are not a straight-knee exercise
    assert "not an exercise of the straight_knee track" in r.text
    assert "&lt;b&gt;pain settled&lt;/b&gt;" in r.text  # the reason typed is kept, escaped
    r = browser.post(f"/patients/{CASE}/override", data={
        "csrf": hidden(r.text, "csrf"), "sha256": hidden(r.text, "sha256"),
        "decision_id": decision_id, "reason": "keeps her single-leg raises: <b>pain settled</b>",
        "track": "straight_knee", "decision": "hold", "exercise": "single_leg_heel_raise",
        "sets": "3", "reps": "12"})
    assert r.status_code == 200 and "Override recorded" in r.text
    assert "&lt;b&gt;pain settled&lt;/b&gt;" in r.text
    with api.open_trail(clinic["trail"]) as trail:
        shown = api.show_decision(trail, decision_id)
    assert shown["entry"]["clinician"] == "local"
    assert [(o["clinician"], o["track"], o["decision"]) for o in shown["overrides"]] == [
        ("local", "straight_knee", "hold")]
    r = browser.post(f"/patients/{CASE}/accept", data={
        "csrf": hidden(r.text, "csrf"), "sha256": hidden(r.text, "sha256"),
        "decision_id": decision_id})
    assert r.status_code == 200 and "Accepted: the programme" in r.text, r.text[:3000]
    program = api.validate_path(clinic["cases"] / f"{CASE}.json").program
    assert program.straight_knee is not None
    assert (program.straight_knee.exercise, program.straight_knee.reps) == (
        "single_leg_heel_raise", 12)
    with api.open_trail(clinic["trail"]) as trail:
        kinds = [(row["kind"], row["clinician"]) for row in api.list_audit(trail, "PF-0188")]
    assert kinds == [("decision", "local"), ("override", "local"), ("accepted", "local")]
    r = browser.get("/audit", params={"patient": "PF-0188"})
    assert "Verified" in r.text and "pain settled" in r.text and "programme now" in r.text


def test_import_keeps_the_good_rows_and_lists_the_bad(
        browser: httpx.Client, clinic: dict[str, Any]) -> None:
    text = (EXAMPLES / "import" / "clinic-export-template.csv").read_text()
    lines = text.splitlines()
    bad = lines[1].replace("2026-11-02", "2026-13-45").replace("CLINIC-0001", "CLINIC-0099")
    upload = "\n".join([*lines, bad]) + "\n"
    page = browser.get("/import").text
    r = browser.post("/import", data={"csrf": hidden(page, "csrf")},
                     files={"csv": ("export.csv", upload.encode(), "text/csv")})
    assert r.status_code == 200, r.text[:800]
    assert "Rows not imported (1)" in r.text and "2026-13-45" in r.text
    assert (clinic["cases"] / "CLINIC-0001.json").is_file()
    api.validate_path(clinic["cases"] / "CLINIC-0001.json")


def test_on_another_address_it_refuses_to_start_without_accounts(tmp_path: Path) -> None:
    (tmp_path / "cases").mkdir()
    out = subprocess.run(
        [sys.executable, "-c", "from calfrehab.cli.main import cli; cli()", "app",
         "--cases", str(tmp_path / "cases"), "--host", "0.0.0.0", "--port", "1"],
        capture_output=True, text=True, env=isolated_env(tmp_path), cwd=tmp_path, timeout=120)
    assert out.returncode == 1
    assert "no accounts are configured" in out.stderr and "add-user" in out.stderr
    assert "Traceback" not in out.stderr


def test_with_accounts_a_clinician_signs_in_and_is_recorded_by_name(tmp_path: Path) -> None:
    cases = tmp_path / "cases"
    cases.mkdir()
    shutil.copy(EXAMPLES / f"{CASE}.json", cases)
    add = subprocess.run(
        [sys.executable, "-c", "from calfrehab.cli.main import cli; cli()", "app", "add-user",
         "Ana Ruiz", "--cases", str(cases)], capture_output=True, text=True, cwd=tmp_path,
        env=isolated_env(tmp_path, CALFREHAB_APP_PASSWORD="correct-horse-9"), timeout=120)
    assert add.returncode == 0, add.stderr
    config = (cases / "calfrehab.toml").read_text()
    assert "correct-horse-9" not in config and "$argon2id$" in config
    assert (cases / "calfrehab.toml").stat().st_mode & 0o077 == 0
    trail = tmp_path / "trail.sqlite3"
    with app_served(cases, trail, tmp_path) as base, \
            httpx.Client(base_url=base, timeout=60) as client:
        r = client.get(f"/patients/{CASE}")
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
        login = client.get("/login").text
        r = client.post("/login", data={"csrf": hidden(login, "csrf"), "name": "Ana Ruiz",
                                         "password": "wrong-horse-9"})
        assert r.status_code == 401
        r = client.post("/login", data={
            "csrf": hidden(login, "csrf"), "name": "Ana Ruiz", "password": "correct-horse-9",
            "next": f"/patients/{CASE}"}, follow_redirects=True)
        assert r.status_code == 200 and "Signed in: <strong>Ana Ruiz</strong>" in r.text
        r = client.post(f"/patients/{CASE}/decide", data={
            "csrf": hidden(r.text, "csrf"), "sha256": hidden(r.text, "sha256")},
            follow_redirects=True)
        assert "Decision recorded" in r.text
    with api.open_trail(trail) as t:
        rows = api.list_audit(t)
    assert [row["clinician"] for row in rows] == ["Ana Ruiz"]


def test_behind_tls_the_session_cookie_is_secure(tmp_path: Path) -> None:
    # A TLS proxy in front serves the app as https; the app itself sees
    # plain HTTP, so --behind-tls is what marks the cookie Secure.
    (tmp_path / "cases").mkdir()
    with app_served(tmp_path / "cases", tmp_path / "trail.sqlite3", tmp_path,
                    "--behind-tls") as base:
        cookie = httpx.get(base + "/patients").headers["set-cookie"].lower()
    assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie
