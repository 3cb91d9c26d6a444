"""The loop in ``calfrehab app``: decide, override, accept, print, log the
next sessions. What the page, the handout and the report show follows what
the clinician decided and the trail (clinical-basis §8): after accepting,
the decision in force is still the recorded one, not the file with its new
programme decided again (a "hold, 0 of 2 sessions done" nobody decided);
once sessions are logged, the next review is due and proposed afresh."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from appserver import hidden, one_patient_client
from click.testing import CliRunner

from calfrehab.cli.main import cli

NAME = "ana"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with one_patient_client(tmp_path_factory.mktemp("clinic"), NAME) as served:
        yield served


def _text(page: str) -> str:
    page = re.sub(r"(?s)<style.*?</style>", "", page)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def _track(page: str, track: str) -> str:
    found = re.search(rf'(?s)<article class="track [^"]*" aria-labelledby="t-{track}">(.*?)'
                      r"</article>", page)
    assert found, f"no {track} block"
    return _text(found.group(1))


def _post(client: httpx.Client, page: str, action: str, **data: str) -> str:
    r = client.post(f"/patients/{NAME}/{action}", data={
        "csrf": hidden(page, "csrf"), "sha256": hidden(page, "sha256"), **data})
    assert r.status_code == 200, _text(r.text)[:2000]
    return r.text


def test_decide_override_accept_then_log_shows_what_the_clinician_decided(
        served: dict[str, Any]) -> None:
    client: httpx.Client = served["client"]
    page = client.get(f"/patients/{NAME}").text
    assert "Decide and record" in page
    page = _post(client, page, "decide")
    decision_id = hidden(page, "decision_id")
    page = _post(client, page, "override", decision_id=decision_id,
                 reason="calf cramp, consolidate", track="straight_knee", decision="hold",
                 exercise="two_leg_heel_raise", sets="4", reps="12", load_kg="0")
    # The overridden track says the clinician's decision first, then the rules'.
    sk = _track(page, "straight_knee")
    assert sk.startswith("Straight knee (gastrocnemius): Hold your decision"), sk
    assert "Overridden by local" in sk and "calf cramp, consolidate" in sk
    assert "Your prescription: Two-leg heel raise, straight knee, 4 × 12" in sk
    assert "The rules proposed: Progress, Single-leg heel raise, straight knee, 3 × 15" in sk
    assert "Next:" not in sk
    # The track the override left alone keeps the rules' decision.
    assert _track(page, "bent_knee").startswith("Bent knee (soleus): Start Next:")
    # So does the patient list: the clinician's hold, marked overridden.
    listed = _text(client.get("/patients").text)
    assert "Straight knee: Hold; Bent knee: Start overridden" in listed, listed

    page = _post(client, page, "accept", decision_id=decision_id)
    text = _text(page)
    # Still the recorded decision, as decided: not a fresh proposal for the
    # file with its new programme.
    assert "Decide and record" not in text and "not recorded yet" not in text
    assert f"decision {decision_id}" in text
    assert _track(page, "straight_knee") == sk
    assert "0 of the last 2" not in text
    assert "Accepted into the programme" in text and "as overridden" in text
    # Accepting again is not offered (it would be refused: the file changed).
    assert 'action="/patients/ana/accept"' not in page
    programme = text[text.index("Current programme"):text.index("Course")]
    assert "Two-leg heel raise, straight knee 4 × 12" in programme

    # The handout and the report printed from here say the same.
    handout = _text(client.get(f"/patients/{NAME}/handout").text)
    assert "4 sets of 12 repetitions" in handout
    assert "calf cramp, consolidate" in handout
    report = _text(client.get(f"/patients/{NAME}/report").text)
    assert "The clinician's decision: Overridden by local" in report
    assert "0 of the last 2" not in report

    # The same file decided and recorded again at the command line (as a
    # chart opening in the record system records one): the rules' proposal
    # for a dose nobody has done yet does not displace the clinician's.
    trail = served["trail"]
    result = CliRunner().invoke(cli, ["next", str(served["case"]), "--audit", str(trail)])
    assert result.exit_code == 0, result.output
    again = client.get(f"/patients/{NAME}").text
    assert f"decision {decision_id}" in _text(again)
    assert _track(again, "straight_knee") == sk
    assert "0 of the last 2" not in _text(again)
    assert 'action="/patients/ana/accept"' not in again
    report = _text(client.get(f"/patients/{NAME}/report").text)
    # (The table of recorded decisions lists the new proposal too: history.)
    decision_section = report[report.index("Decision at this review"):
                              report.index("The course at a glance")]
    assert "The clinician's decision: Overridden by local" in decision_section
    assert "0 of the last 2" not in decision_section
    assert "Not yet accepted" not in decision_section
    assert "completed in 0 of the last 2" in report[report.index("Recorded decisions"):]

    # A session logged at the command line: the next review is due, and the
    # page proposes it afresh on the sessions done at the accepted dose.
    result = CliRunner().invoke(cli, ["log", str(served["case"]), "--date", "2026-11-23",
                                      "--straight-knee-pain", "1", "--bent-knee-pain", "0",
                                      "--no-input"])
    assert result.exit_code == 0, result.output
    page = client.get(f"/patients/{NAME}").text
    text = _text(page)
    assert "Proposal" in text and "Decide and record" in text
    assert "your decision" not in text
