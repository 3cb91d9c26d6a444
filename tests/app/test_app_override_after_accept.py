"""An accepted decision takes no override, in the app and at the command
line alike (clinical-basis §8: what the patient takes home is what the
clinician decided). Accepting writes the programme; the app then offers
no Override, and an override recorded after it would change neither the
programme, nor the handout, nor the report, which all follow the
acceptance. So ``calfrehab audit override`` refuses it, naming the
acceptance and what to do instead, and so does a stale override form."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from appserver import hidden, one_patient_client
from click.testing import CliRunner

from calfrehab.cli.main import cli
from calfrehab.engine.trail.audit import AuditTrail

NAME = "ben"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with one_patient_client(tmp_path_factory.mktemp("clinic"), NAME) as served:
        yield served


def _post(client: httpx.Client, page: str, action: str, **data: str) -> httpx.Response:
    return client.post(f"/patients/{NAME}/{action}", data={
        "csrf": hidden(page, "csrf"), "sha256": hidden(page, "sha256"), **data})


def test_an_accepted_decision_takes_no_override_in_the_app_or_the_command(
        served: dict[str, Any]) -> None:
    client: httpx.Client = served["client"]
    page = client.get(f"/patients/{NAME}").text
    page = _post(client, page, "decide").text
    decision_id = hidden(page, "decision_id")
    stale_form = page  # the override form as it was before accepting
    accepted = _post(client, page, "accept", decision_id=decision_id)
    assert accepted.status_code == 200
    assert 'action="/patients/ben/override"' not in accepted.text  # the app offers none
    case_before = served["case"].read_bytes()
    with AuditTrail(served["trail"]) as trail:
        entries_before = len(trail)

    # The command refuses it, naming the acceptance and what to do instead.
    result = CliRunner().invoke(cli, [
        "audit", "override", decision_id[:8], "--audit", str(served["trail"]),
        "--clinician", "Dr B", "--reason", "calf sore", "--track", "straight_knee",
        "--decision", "hold", "--exercise", "two_leg_heel_raise", "--sets", "3",
        "--reps", "15"])
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    message = result.output.strip()
    assert len(message.splitlines()) == 1, message
    assert f"decision {decision_id[:8]} of case" in message
    assert "was accepted into the programme by local on" in message
    assert "Decide the case again (calfrehab next CASE) and override that decision" in message

    # A form from before accepting is refused on the page (the file
    # changed); posted on the accepted file, it is refused as the command is.
    stale = _post(client, stale_form, "override", decision_id=decision_id,
                  reason="calf sore", track="straight_knee", decision="hold")
    assert stale.status_code == 409
    refused = client.post(f"/patients/{NAME}/override", data={
        "csrf": hidden(stale_form, "csrf"),
        "sha256": hashlib.sha256(served["case"].read_bytes()).hexdigest(),
        "decision_id": decision_id, "reason": "calf sore", "track": "straight_knee",
        "decision": "hold"})
    assert refused.status_code == 409
    assert "was accepted into the programme" in re.sub(r"\s+", " ", refused.text)

    # Nothing recorded, the case file untouched, the page as accepted.
    with AuditTrail(served["trail"]) as trail:
        assert len(trail) == entries_before
        assert trail.overrides_for(decision_id) == []
    assert served["case"].read_bytes() == case_before
    page = client.get(f"/patients/{NAME}").text
    assert "Accepted into the programme" in page and "Overridden" not in page
