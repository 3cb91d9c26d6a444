"""``calfrehab app`` and a case file that does not validate: the page says
the file is invalid and names each problem (field, value, what is
expected), and shows nothing of the file as if it were a case: no red-flag
badge from an unknown red flag, no programme, no sessions, no decision."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from appserver import REPO, app_served

# The contract's invalid example (../shared/examples/invalid-case.json),
# written out here so that a clone without ../shared runs this test.
INVALID: dict[str, Any] = {
    "schema_version": 1, "case_id": "BAD 01", "review_date": "2026-11-22",
    "patient": {"age_years": 30, "goal": "running"},
    "condition": {"kind": "achilles_midportion", "side": "left"},
    "red_flags": ["calf_swelling"],
    "program": {"straight_knee": {"exercise": "single_leg_bent_knee_heel_raise",
                                  "sets": 3, "reps": 15}},
    "sessions": [{"date": "2026-11-25", "exercises": [
        {"exercise": "single_leg_heel_raise", "sets_completed": [15, 15, 15],
         "pain_during": 11}], "pain_next_mornig": 2}],
}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("clinic")
    cases = home / "cases"
    cases.mkdir()
    (cases / "invalid-case.json").write_text(json.dumps(INVALID, indent=2))
    # A valid case but for one red flag that is not in the vocabulary.
    doc = json.loads((REPO / "examples" / "runner-stuck-on-two-leg.json").read_text())
    doc["red_flags"] = ["zombie_bite"]
    (cases / "unknown-flag.json").write_text(json.dumps(doc, indent=2))
    with app_served(cases, home / "trail.sqlite3", home) as base, \
            httpx.Client(base_url=base, timeout=60, follow_redirects=True) as client:
        yield {"client": client, "cases": cases}


def _text(page: str) -> str:
    """What the reader sees: the page's text, markup and spacing dropped."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def test_an_unknown_red_flag_is_named_as_an_error_never_as_a_red_flag(
        served: dict[str, Any]) -> None:
    client: httpx.Client = served["client"]
    text = _text(client.get("/patients/unknown-flag").text)
    assert "invalid case file" in text
    assert ('red_flags[0]: unknown red flag; known red flags: suspected_rupture, '
            'calf_swelling_warmth') in text
    assert '(got "zombie_bite")' in text
    # Not shown as a red flag the rules know, nor as a referral.
    assert "red flag: Zombie bite" not in text
    assert "referral" not in text
    # Nothing of the file as if it were a case, and no decision.
    for absent in ("Current programme", "Two-leg heel raise", "Sessions as a table",
                   "Proposal", "Decide and record", "Decision"):
        assert absent not in text, absent


def test_the_contracts_invalid_example_names_every_problem_and_shows_nothing_else(
        served: dict[str, Any]) -> None:
    client: httpx.Client = served["client"]
    text = _text(client.get("/patients/invalid-case").text)
    assert "This case file is invalid" in text
    for problem in ('case_id: expected 1–64 characters', '(got "BAD 01")',
                    'red_flags[0]: unknown red flag', '(got "calf_swelling")',
                    'pain_during: expected a value ≤ 10 (got 11)',
                    'unknown field `pain_next_mornig`',
                    '`single_leg_bent_knee_heel_raise` belongs to the bent_knee track'):
        assert problem in text, problem
    for absent in ("red flag: Calf swelling", "referral", "Current programme", "11/10",
                   "Proposal", "Decide and record"):
        assert absent not in text, absent


def test_the_patient_list_flags_an_invalid_file_as_needing_a_fix_not_as_a_referral(
        served: dict[str, Any]) -> None:
    client: httpx.Client = served["client"]
    page = client.get("/patients").text
    rows = {m.group(1): _text(m.group(0)) for m in
            re.finditer(r'(?s)<tr[^>]*>.*?\((\S+?\.json)\).*?</tr>', page)}
    assert set(rows) == {"invalid-case.json", "unknown-flag.json"}, rows
    for row in rows.values():
        assert "file needs fixing" in row
        assert "referral" not in row
    # Asked for the referrals, the list has none of them.
    referrals = _text(client.get("/patients", params={"badge": "referral"}).text)
    assert "0 of 2 case file(s)" in referrals


def test_handout_and_report_of_an_invalid_file_are_refused_naming_the_problem(
        served: dict[str, Any]) -> None:
    client: httpx.Client = served["client"]
    for what in ("handout", "report"):
        r = client.get(f"/patients/unknown-flag/{what}")
        assert r.status_code == 409
        assert '(got "zombie_bite")' in _text(r.text)


def test_nothing_is_written_to_an_invalid_file(served: dict[str, Any]) -> None:
    path: Path = served["cases"] / "invalid-case.json"
    assert json.loads(path.read_text()) == INVALID
