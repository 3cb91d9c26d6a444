"""Accepting a decision, the case-file side: which prescription each track
gets from a decision or an override, written atomically with keys in place,
refused for another version of the file or another patient's."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from helpers import EXAMPLES

from calfrehab.engine import api
from calfrehab.engine.canonical import case_sha256
from calfrehab.engine.entry.accept import (
    AcceptError,
    StaleDecision,
    apply_decision,
    program_after,
    program_sha256,
)


@pytest.fixture
def case(tmp_path: Path) -> Path:
    path = tmp_path / "run.json"
    shutil.copy(EXAMPLES / "runner-stuck-on-two-leg.json", path)
    return path


def decided(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = api.decide_path(str(path), api.prepare(None)).decision.model_dump(
        mode="json")
    return data


def test_each_track_gets_the_decisions_next_dose(case: Path) -> None:
    decision = decided(case)
    before = case.read_text(encoding="utf-8")
    applied = apply_decision(case, decision)
    doc = json.loads(case.read_text(encoding="utf-8"))
    # straight knee progressed to single-leg, bent knee started.
    assert doc["program"]["straight_knee"] == {"exercise": "single_leg_heel_raise",
                                               "load_kg": 0, "sets": 3, "reps": 15}
    assert doc["program"]["bent_knee"]["exercise"] == "two_leg_bent_knee_heel_raise"
    assert "energy_storage" not in doc["program"]
    assert applied.program == doc["program"]
    assert applied.program_sha256 == program_sha256(doc["program"])
    # Nothing else changed, and every key kept its place.
    old = json.loads(before)
    assert {k: v for k, v in doc.items() if k != "program"} == {
        k: v for k, v in old.items() if k != "program"}
    assert list(doc) == list(old)
    assert list(doc["program"]) == ["straight_knee", "bent_knee"]


def test_an_override_prescription_wins_and_hold_keeps_the_dose(case: Path) -> None:
    decision = decided(case)
    current = json.loads(case.read_text(encoding="utf-8"))["program"]
    override = {"decision_id": decision["decision_id"], "clinician": "A. Berg",
                "reason": "one more week on two legs", "track": "straight_knee",
                "decision": "hold",
                "prescriptions": {"straight_knee": {"exercise": "two_leg_heel_raise",
                                                    "sets": 4, "reps": 12, "load_kg": 0}}}
    program, changes = program_after(decision, override, current)
    assert program["straight_knee"] == {"exercise": "two_leg_heel_raise", "load_kg": 0,
                                        "sets": 4, "reps": 12}
    # The other tracks still follow the decision.
    assert program["bent_knee"]["exercise"] == "two_leg_bent_knee_heel_raise"
    assert any("from the override" in c for c in changes)
    del override["prescriptions"]
    program, _ = program_after(decision, override, current)
    assert program["straight_knee"] == current["straight_knee"]
    override["decision"] = "regress"
    with pytest.raises(AcceptError, match="gives no prescription"):
        program_after(decision, override, current)
    whole = {"decision_id": decision["decision_id"], "track": None, "decision": None}
    with pytest.raises(AcceptError, match="as a whole"):
        program_after(decision, whole, current)


def test_a_decision_for_another_version_is_refused_naming_both_hashes(case: Path) -> None:
    decision = decided(case)
    apply_decision(case, decision)
    before = case.read_bytes()
    with pytest.raises(StaleDecision) as err:
        apply_decision(case, decision)
    assert decision["case_sha256"] in str(err.value)
    assert case_sha256(json.loads(before)) in str(err.value)
    assert case.read_bytes() == before
    apply_decision(case, decision, force=True)


def test_another_patients_decision_is_refused_even_forced(case: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    data = json.loads(case.read_text(encoding="utf-8"))
    data["case_id"] = "OTHER-1"
    other.write_text(json.dumps(data), encoding="utf-8")
    decision = decided(other)
    before = case.read_bytes()
    with pytest.raises(AcceptError, match="another patient"):
        apply_decision(case, decision, force=True)
    assert case.read_bytes() == before


def test_a_failed_record_puts_the_file_back(case: Path) -> None:
    decision = decided(case)
    before = case.read_bytes()

    def fail(_: object) -> None:
        raise RuntimeError("trail is down")

    with pytest.raises(RuntimeError):
        apply_decision(case, decision, record=fail)
    assert case.read_bytes() == before
