"""The patient list's Decision column shows the decision in force, as the
patient's page, the report and the handout do (api.case_state with
``acted_on``): a clinician's override is not displaced by a proposal
recorded after it on the same data (`next` run again, a CDS chart opening),
and once a session is entered since, the latest recorded decision shows."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from appserver import one_patient_client
from click.testing import CliRunner

from calfrehab.cli.main import cli
from calfrehab.engine import api

NAME = "ben"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with one_patient_client(tmp_path_factory.mktemp("clinic"), NAME) as served:
        yield served


def _run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def _row(client: httpx.Client) -> str:
    """The patient's row of the list, as text."""
    page = client.get("/patients").text
    rows = [r for r in re.findall(r"(?s)<tr>(.*?)</tr>", page) if f"/patients/{NAME}" in r]
    assert len(rows) == 1, page
    return " ".join(re.sub(r"<[^>]+>", " ", rows[0]).split())


def test_the_list_shows_the_override_not_a_later_proposal(served: dict[str, Any]) -> None:
    client: httpx.Client = served["client"]
    case, trail = str(served["case"]), str(served["trail"])
    decided = json.loads(_run("next", case, "--json", "--audit", trail))
    assert "Straight knee: Progress" in _row(client)
    _run("audit", "override", decided["decision_id"][:12], "--audit", trail,
         "--clinician", "A. Berg", "--reason", "calf tender, keep the dose",
         "--track", "straight_knee", "--decision", "hold",
         "--exercise", "two_leg_heel_raise", "--sets", "4", "--reps", "12")
    assert "Straight knee: Hold" in _row(client)

    # The same case decided again: a proposal recorded after the override.
    again = json.loads(_run("next", case, "--json", "--audit", trail))
    row = _row(client)
    # Before: "Straight knee: Progress", and no "overridden" badge.
    assert "Straight knee: Hold" in row and "overridden" in row
    page = client.get(f"/patients/{NAME}").text
    assert "calf tender, keep the dose" in page  # the patient's page agrees

    def standing() -> str | None:
        # The report's and the handout's decision in force: one read of the trail.
        now = json.loads(served["case"].read_text(encoding="utf-8"))
        state = api.case_state(trail, now["case_id"], acted_on=True, current=now,
                               or_latest=True)
        return None if state is None else state.decision_id

    assert standing() == decided["decision_id"]

    # A session entered since: the override no longer stands on the file's
    # data, and the list shows the latest recorded decision, as the page does.
    doc = json.loads(served["case"].read_text(encoding="utf-8"))
    doc["sessions"].append({**doc["sessions"][-1], "date": "2026-11-21"})
    doc["review_date"] = "2026-11-21"  # as `calfrehab log` moves it
    served["case"].write_text(json.dumps(doc, indent=2), encoding="utf-8")
    row = _row(client)
    assert "Straight knee: Progress" in row and "overridden" not in row
    assert standing() == again["decision_id"]


def test_a_file_not_in_the_trail_says_so(tmp_path: Path) -> None:
    from calfrehab.app.trailindex import TrailIndex

    index = TrailIndex(tmp_path / "none.sqlite3")
    assert index.in_force("RUN-0001", {"sessions": []}) is None
    assert index.latest() == {}
    assert not (tmp_path / "none.sqlite3").exists()  # reading never creates one


def test_the_rule_the_list_the_page_and_case_state_share() -> None:
    # api.in_force: the decision acted on stands until a session or an
    # assessment is entered since it; then (or with none acted on) the latest.
    then: dict[str, Any] = {"case_id": "c", "sessions": [{"date": "2026-11-20"}]}
    logged = {**then, "sessions": [*then["sessions"], {"date": "2026-11-21"}]}
    reprogrammed = {**then, "program": {"straight_knee": {"exercise": "x"}}}
    assert api.in_force("acted", then, "latest", reprogrammed) == "acted"
    assert api.in_force("acted", then, "latest", None) == "acted"
    assert api.in_force("acted", then, "latest", logged) == "latest"
    assert api.in_force(None, None, "latest", then) == "latest"
    assert api.in_force("acted", then, None, logged) is None
