"""Decide-then-record, written once: ``api.decide_and_record`` is what
``next``, ``fhir export``, the service and the app's Decide button call."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import calfrehab
from calfrehab.engine import api

ROOT = Path(calfrehab.__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "runner-stuck-on-two-leg.json"


def _recorded(trail_path: Path) -> list[dict[str, object]]:
    with api.open_trail(trail_path) as trail:
        return api.list_audit(trail)


def test_each_form_decides_the_same_and_records_once(tmp_path: Path) -> None:
    reasoner = api.prepare()
    trail = tmp_path / "trail.db"
    document = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    made = [
        api.decide_and_record(str(EXAMPLE), reasoner, audit_path=trail, clinician="jm"),
        api.decide_and_record(EXAMPLE, reasoner, audit_path=trail, clinician="jm", form="any"),
        api.decide_and_record(document, reasoner, audit_path=trail, clinician="jm",
                              form="document", requester={"iss": "https://ehr.example"}),
    ]
    documents = {json.dumps(d.decision.model_dump(mode="json") | {"decision_id": "",
                                                                    "decided_at": ""})
                 for d in made}
    assert len(documents) == 1  # the same decision, ids and times aside
    rows = _recorded(trail)
    assert [r["decision_id"] for r in rows] == [d.decision.decision_id for d in made]
    # A decision made already (the app's proposal) is recorded as it is,
    # once: the trail refuses the same decision twice.
    proposal = api.decide_and_record(str(EXAMPLE), reasoner, audit_path=trail,
                                     clinician="ab", record=False)
    assert len(_recorded(trail)) == 3
    assert api.decide_and_record(proposal, reasoner, audit_path=trail,
                                 clinician="ab") is proposal
    assert _recorded(trail)[-1]["decision_id"] == proposal.decision.decision_id
    with pytest.raises(api.AuditError, match="already recorded"):
        api.decide_and_record(proposal, reasoner, audit_path=trail, clinician="ab")

def test_not_recording_leaves_no_trail(tmp_path: Path) -> None:
    trail = tmp_path / "trail.db"
    decided = api.decide_and_record(str(EXAMPLE), api.prepare(), audit_path=trail,
                                    clinician=None, record=False)
    assert decided.decision.outcome == "continue"
    assert not trail.exists()


def test_a_document_is_never_opened_as_a_path(tmp_path: Path) -> None:
    # The service passes the request's JSON as a document: a string there
    # is an invalid case, not a file name to read on the server.
    with pytest.raises(api.CaseValidationError):
        api.decide_and_record(str(EXAMPLE), api.prepare(), audit_path=tmp_path / "t.db",
                              clinician=None, form="document")
    with pytest.raises(api.ArgumentError) as caught:
        api.decide_and_record({"case_id": "x"}, api.prepare(), audit_path=tmp_path / "t.db",
                              clinician=None)
    assert str(caught.value) == (
        "decide_and_record(): argument source is {'case_id': 'x'} (dict); expected a "
        "file's path (str or Path) for form 'case'; form 'document' takes a parsed case")
    assert (caught.value.parameter, caught.value.value) == ("source", {"case_id": "x"})
    assert not (tmp_path / "t.db").exists()
