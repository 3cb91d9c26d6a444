"""Format 3 of the audit trail (issues 21, 23 and 27): ``accepted``
entries, an override's own prescription, who asked (``requester``), and
the upgrade from format 2 (and 1 through 2) that keeps every hash."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from test_trail_storage import pair, raw
from trail_v1 import write_v1_trail

from calfrehab.engine.audit.views import accept_decision, override_decision, show_decision
from calfrehab.engine.trail.audit import AuditError, AuditTrail
from calfrehab.engine.trail.migrate import migrate
from calfrehab.engine.trail.payloads import program_sha256
from calfrehab.engine.trail.shards import open_shard, shard_path, write_manifest

# A trail written by calfrehab before format 3 (format 2, three decisions
# and two overrides), and the head `audit verify` printed for it then.
V2_TRAIL = Path(__file__).parent / "trail_v2.sqlite3"
V2_HEAD = (5, "7fc931f1d101ea5888ce2384dafb27df34e99ba8359cc4dde09c7f50f53e4b78")

ASKED = {"hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea", "iss": "https://ehr.example",
         "sub": "Practitioner/123", "fhirServer": "https://fhir.example/r4"}
PROGRAM: dict[str, Any] = {
    "straight_knee": {"exercise": "two_leg_heel_raise", "sets": 3, "reps": 15, "load_kg": 0},
    "bent_knee": {"exercise": "seated_calf_raise", "sets": 3, "reps": 12, "load_kg": 10.0},
    "energy_storage": None,
}


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "audit.sqlite3"


@pytest.fixture
def v2(tmp_path: Path) -> Path:
    target = tmp_path / "v2.sqlite3"
    shutil.copyfile(V2_TRAIL, target)
    return target


# -------------------------------------------------- a format-2 trail, upgraded


def test_a_format_2_trail_verifies_and_is_read_as_it_is(v2: Path) -> None:
    with AuditTrail(v2, readonly=True) as trail:
        assert trail.version == 2
        report = trail.verify()
        assert (report.ok, report.entries_checked, report.last_hash) == (True, *V2_HEAD)
        assert [e.kind for e in trail.entries()] == ["decision"] * 3 + ["override"] * 2
        assert all(e.requester is None for e in trail.entries())


def test_recording_into_a_format_2_trail_names_the_migration(v2: Path) -> None:
    before = v2.read_bytes()
    with AuditTrail(v2) as trail, pytest.raises(AuditError, match="audit migrate"):
        trail.record(*pair(1))
    with pytest.raises(AuditError, match="audit migrate"):
        override_decision(v2, "4bf5d2bd", "dr x", "why")
    with AuditTrail(v2, readonly=True) as trail:
        assert trail.head() == V2_HEAD
    assert len(v2.read_bytes()) == len(before)


def test_a_handle_refused_at_format_2_records_once_the_trail_is_migrated(v2: Path) -> None:
    # The app or the service holds the trail open while an admin runs
    # `audit migrate`: the format is read again under the write lock, so
    # the handle records without being reopened. Before: refused until then.
    with AuditTrail(v2) as trail:
        with pytest.raises(AuditError, match="audit migrate"):
            trail.record(*pair(1))
        with pytest.raises(AuditError, match="audit migrate"):
            trail.override(trail.entries()[0].decision_id, "dr x", "why")
        assert trail.head() == V2_HEAD  # nothing was written
        migrate(v2, vacuum=False)
        entry = trail.record(*pair(1))
        accepted = trail.accept(entry.decision_id, PROGRAM, "dr a")
        assert trail.version == 4 and accepted.kind == "accepted"
        assert trail.accepted_for(entry.decision_id) == [accepted]
        report = trail.verify()
        assert report.ok and report.entries_checked == V2_HEAD[0] + 2


def test_migrating_format_2_keeps_every_hash_and_the_written_down_head(v2: Path) -> None:
    with AuditTrail(v2, readonly=True) as trail:
        old = [(e.seq, e.entry_id, e.entry_hash, e.decision, e.case) for e in trail.entries()]
    report = migrate(v2)
    assert (report.from_version, report.to_version, report.entries) == (2, 4, 5)
    assert report.last_hash == V2_HEAD[1]
    with AuditTrail(v2) as trail:
        assert trail.version == 4
        assert trail.verify().ok and trail.head() == V2_HEAD
        assert [(e.seq, e.entry_id, e.entry_hash, e.decision, e.case)
                for e in trail.entries()] == old
        # and it records again, chained on the old head
        entry = trail.record(*pair(9), requester=ASKED)
        assert entry.seq == 6 and entry.prev_hash == V2_HEAD[1]
        assert trail.verify().ok
    again = migrate(v2)
    assert again.from_version == again.to_version == 4


def test_a_tampered_format_2_trail_is_not_migrated(v2: Path) -> None:
    with raw(v2) as conn:
        conn.execute("UPDATE entries SET clinician = 'someone else' WHERE seq = 2")
    def dump() -> list[str]:
        conn = sqlite3.connect(v2)
        try:
            return list(conn.iterdump())
        finally:
            conn.close()

    before = dump()
    with pytest.raises(AuditError, match="does not verify"):
        migrate(v2)
    assert dump() == before  # the evidence as it was (the journal mode aside)


def test_a_format_1_trail_migrates_through_format_2(path: Path) -> None:
    pairs = [pair(n) for n in (1, 2, 3)]
    v1_head = write_v1_trail(path, pairs, [(pairs[0][0]["decision_id"], "dr o", "disagree")])
    report = migrate(path, chunk=2)
    assert (report.from_version, report.to_version, report.entries) == (1, 4, 4)
    assert report.v1_last_hash == v1_head
    with AuditTrail(path) as trail:
        assert trail.version == 4 and trail.verify().ok
        assert trail.head() == (4, report.last_hash)


# ------------------------------------------------------------- who asked


def test_the_requester_is_stored_and_covered_by_the_entry_hash(path: Path) -> None:
    with AuditTrail(path) as trail:
        decision = trail.record(*pair(1), requester=ASKED)
        plain = trail.record(*pair(2))
        assert decision.requester == ASKED and plain.requester is None
        assert trail.entries()[0].requester == ASKED
    for value in ('{"iss":"https://evil.example"}', None):
        with raw(path) as conn:
            conn.execute("UPDATE entries SET requester = ? WHERE seq = 1", (value,))
        with AuditTrail(path) as trail:
            report = trail.verify()
            assert (report.ok, report.first_bad_seq) == (False, 1)
            assert "altered" in str(report.problem)
    with raw(path) as conn:  # a requester added to an entry that had none
        conn.execute("UPDATE entries SET requester = ? WHERE seq = 2", ('{"sub":"x"}',))
        conn.execute("UPDATE entries SET requester = ? WHERE seq = 1",
                     ('{"fhirServer":"https://fhir.example/r4","hookInstance":'
                      '"d1577c69-dfbe-44ad-ba6d-3e05e953b2ea","iss":"https://ehr.example",'
                      '"sub":"Practitioner/123"}',))
    with AuditTrail(path) as trail:
        assert trail.verify().first_bad_seq == 2


@pytest.mark.parametrize(("requester", "message"), [
    ({"hookinstance": "x"}, "unknown key"),
    ({"iss": 3}, "must be text"),
    ({"sub": "x" * 3000}, "at most 2048"),
    ("Practitioner/1", "must be a Requester or a mapping"),
])
def test_a_bad_requester_is_refused_and_nothing_written(path: Path, requester: Any,
                                                        message: str) -> None:
    with AuditTrail(path) as trail:
        with pytest.raises(AuditError, match=message):
            trail.record(*pair(1), requester=requester)
        assert len(trail) == 0


# ------------------------------------------ override with a prescription


def test_an_override_carries_the_clinicians_prescription(path: Path) -> None:
    with AuditTrail(path) as trail:
        decision = trail.record(*pair(1))
        plain = trail.override(decision.decision_id, "dr b", "hold", "straight_knee", "hold")
        assert "prescriptions" not in plain.decision  # the payload format 2 wrote
        rx = trail.override(
            decision.decision_id, "dr b", "one more week on two legs", "straight_knee", "hold",
            prescriptions={"straight_knee": {"exercise": "two_leg_heel_raise", "sets": 3,
                                             "reps": 12}, "energy_storage": None},
            requester=ASKED,
        )
        assert rx.decision["prescriptions"] == {
            "straight_knee": {"exercise": "two_leg_heel_raise", "sets": 3, "reps": 12,
                              "load_kg": 0.0},
            "energy_storage": None,
        }
        assert rx.requester == ASKED
        assert trail.latest_override(decision.decision_id) == rx
        assert trail.verify().ok


@pytest.mark.parametrize(("prescriptions", "message"), [
    ({"calf": {"exercise": "two_leg_heel_raise", "sets": 3, "reps": 12}}, "unknown track"),
    ({"straight_knee": {"exercise": "seated_calf_raise", "sets": 3, "reps": 12}},
     "belongs to the bent_knee track"),
    ({"straight_knee": {"exercise": "two_leg_heel_raise", "sets": 11, "reps": 12}}, "sets"),
    ({"straight_knee": {"exercise": "two_leg_heel_raise", "sets": 3, "reps": 0}}, "reps"),
    ({"straight_knee": {"exercise": "two_leg_heel_raise", "sets": 3, "reps": 9,
                        "load_kg": -1}}, "load_kg"),
    ({"straight_knee": {"exercise": "hop", "sets": 3, "reps": 9}}, "exercise"),
    ({"straight_knee": {"exercise": "two_leg_heel_raise", "sets": 3, "reps": 9, "x": 1}}, "x"),
    ({"straight_knee": "3x15"}, "must be an object"),
    ({}, "at least one track"),
])
def test_a_bad_prescription_is_refused_naming_it(path: Path, prescriptions: Any,
                                                 message: str) -> None:
    with AuditTrail(path) as trail:
        decision = trail.record(*pair(1))
        with pytest.raises(AuditError, match=message):
            trail.override(decision.decision_id, "dr b", "why", "straight_knee", "hold",
                           prescriptions=prescriptions)
        assert len(trail) == 1


# ---------------------------------------------------------------- accepted


def test_accepted_links_decision_override_and_the_programme_written(path: Path) -> None:
    with AuditTrail(path) as trail:
        decision = trail.record(*pair(1))
        override = trail.override(decision.decision_id, "dr b", "why", "bent_knee", "hold")
    result = accept_decision(path, decision.decision_id[:8], PROGRAM, "dr b",
                             override_entry_id=override.entry_id, requester=ASKED)
    accepted = result["accepted"]
    assert accepted["override_entry_id"] == override.entry_id
    assert accepted["program"] == PROGRAM
    assert accepted["program_sha256"] == program_sha256(PROGRAM)
    with AuditTrail(path, readonly=True) as trail:
        assert trail.verify().ok
        [entry] = trail.accepted_for(decision.decision_id)
        assert (entry.kind, entry.seq, entry.case_id, entry.requester) == (
            "accepted", 3, decision.case_id, ASKED)
        shown = show_decision(trail, decision.decision_id)
    assert [o["entry_id"] for o in shown["overrides"]] == [override.entry_id]
    assert shown["accepted"][0]["override_entry_id"] == override.entry_id
    assert shown["integrity"]["ok"]


def test_accepting_the_decision_as_recorded(path: Path) -> None:
    with AuditTrail(path) as trail:
        decision = trail.record(*pair(1))
        entry = trail.accept(decision.decision_id, PROGRAM)
        assert entry.decision["override_entry_id"] is None
        assert entry.clinician is None and trail.verify().ok


def test_an_acceptance_committed_by_another_process_refuses_a_later_override(
    path: Path,
) -> None:
    # Two handles, two connections (two processes' worth): the acceptance
    # commits after the overrider opened the trail and saw the decision
    # unaccepted. The check is made under the override's write lock, so it
    # sees the acceptance and writes nothing (lock, then compare).
    with AuditTrail(path) as trail:
        decision = trail.record(*pair(1))
    with AuditTrail(path) as overrider, AuditTrail(path) as accepter:
        assert overrider.accepted_for(decision.decision_id) == []
        accepter.accept(decision.decision_id, PROGRAM, "dr a")
        with pytest.raises(AuditError, match=(
            rf"decision {decision.decision_id[:8]} of case {decision.case_id} was accepted "
            r"into the programme by dr a on \d{4}-\d\d-\d\d \(audit entry 2\)")):
            overrider.override(decision.decision_id, "dr b", "pain next morning",
                               "bent_knee", "hold")
    with AuditTrail(path, readonly=True) as trail:
        assert [e.kind for e in trail.entries()] == ["decision", "accepted"]
        assert trail.verify().ok


def test_an_acceptance_must_link_what_it_applied(path: Path) -> None:
    with AuditTrail(path) as trail:
        first = trail.record(*pair(1))
        second = trail.record(*pair(2))
        other = trail.override(second.decision_id, "dr b", "why")
        with pytest.raises(AuditError, match="no decision nope"):
            trail.accept("nope", PROGRAM)
        with pytest.raises(AuditError, match=f"is of decision {second.decision_id}"):
            trail.accept(first.decision_id, PROGRAM, override_entry_id=other.entry_id)
        with pytest.raises(AuditError, match="no override"):
            trail.accept(first.decision_id, PROGRAM, override_entry_id=first.entry_id)
        with pytest.raises(AuditError, match="belongs to the bent_knee track"):
            trail.accept(first.decision_id, {"straight_knee": PROGRAM["bent_knee"]})
        with pytest.raises(AuditError, match="the accepted programme"):
            trail.accept(first.decision_id, {"straight_knee": {"exercise": "x"}})
        assert len(trail) == 3


def test_overrides_and_acceptances_are_never_written_into_a_shard(tmp_path: Path) -> None:
    directory = tmp_path / "run.d"
    with open_shard(directory, 0) as shard:
        decision = shard.record(*pair(1))
    write_manifest(directory)
    with pytest.raises(AuditError, match="sharded audit trail"):
        override_decision(shard_path(directory, 0), decision.decision_id, "dr", "why")
    with pytest.raises(AuditError, match="sharded audit trail"):
        accept_decision(shard_path(directory, 0), decision.decision_id, PROGRAM)
    with AuditTrail(shard_path(directory, 0), readonly=True) as trail:
        assert len(trail) == 1


def test_a_write_never_creates_a_trail(tmp_path: Path) -> None:
    with pytest.raises(AuditError, match="no audit trail at"):
        override_decision(tmp_path / "none.sqlite3", "abcd", "dr", "why")
    assert not (tmp_path / "none.sqlite3").exists()


# ---------------------------------------------- not a regular file (item 5)


@pytest.mark.parametrize("readonly", [False, True])
def test_a_fifo_at_the_trail_path_is_refused_not_waited_on(tmp_path: Path,
                                                           readonly: bool) -> None:
    fifo = tmp_path / "audit.sqlite3"
    os.mkfifo(fifo)
    with pytest.raises(AuditError, match=r"not a regular file \(a FIFO\)"):
        AuditTrail(fifo, readonly=readonly)


def test_a_device_is_refused_and_nothing_is_left_beside_it(tmp_path: Path) -> None:
    device = Path(os.devnull)
    before = set(device.parent.iterdir())
    with pytest.raises(AuditError, match="a character device"):
        AuditTrail(device)
    assert set(device.parent.iterdir()) == before


def test_the_header_is_checked_through_sqlite(path: Path) -> None:
    # No second descriptor of the file: the message still names it.
    path.write_bytes(b"not a database at all" * 10)
    with pytest.raises(AuditError, match="is not a SQLite database"):
        AuditTrail(path)
    with pytest.raises(AuditError, match="is not a SQLite database"):
        AuditTrail(path, readonly=True)
