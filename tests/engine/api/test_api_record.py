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
        api.decide_and_record(api.FromCaseFile(str(EXAMPLE)), reasoner, audit_path=trail,
                              clinician="jm"),
        api.decide_and_record(api.FromEitherFile(EXAMPLE), reasoner, audit_path=trail,
                              clinician="jm"),
        api.decide_and_record(api.FromDocument(document), reasoner, audit_path=trail,
                              clinician="jm", requester={"iss": "https://ehr.example"}),
    ]
    documents = {json.dumps(d.decision.model_dump(mode="json") | {"decision_id": "",
                                                                    "decided_at": ""})
                 for d in made}
    assert len(documents) == 1  # the same decision, ids and times aside
    rows = _recorded(trail)
    assert [r["decision_id"] for r in rows] == [d.decision.decision_id for d in made]
    # A decision made already (the app's proposal) is recorded as it is,
    # once: the trail refuses the same decision twice.
    proposal = api.decide_and_record(api.FromCaseFile(EXAMPLE), reasoner, audit_path=trail,
                                     clinician="ab", record=False)
    assert len(_recorded(trail)) == 3
    assert api.decide_and_record(proposal, reasoner, audit_path=trail,
                                 clinician="ab") is proposal
    assert _recorded(trail)[-1]["decision_id"] == proposal.decision.decision_id
    with pytest.raises(api.AuditError, match="already recorded"):
        api.decide_and_record(proposal, reasoner, audit_path=trail, clinician="ab")

def test_not_recording_leaves_no_trail(tmp_path: Path) -> None:
    trail = tmp_path / "trail.db"
    decided = api.decide_and_record(api.FromCaseFile(EXAMPLE), api.prepare(),
                                    audit_path=trail, clinician=None, record=False)
    assert decided.decision.outcome == "continue"
    assert not trail.exists()


def test_a_document_is_never_opened_as_a_path(tmp_path: Path) -> None:
    # The service passes the request's JSON as a document: a string there
    # is an invalid case, not a file name to read on the server.
    with pytest.raises(api.CaseValidationError):
        api.decide_and_record(api.FromDocument(str(EXAMPLE)), api.prepare(),
                              audit_path=tmp_path / "t.db", clinician=None)
    assert not (tmp_path / "t.db").exists()


@pytest.mark.parametrize("source", [str(EXAMPLE), {"case_id": "x"},
                                    api.FromCaseFile(42),  # type: ignore[arg-type]
                                    api.FromBundleFile(None)])  # type: ignore[arg-type]
def test_a_source_of_no_kind_is_named(tmp_path: Path, source: object) -> None:
    # A bare path or a document says neither how to read it nor whether it
    # may be opened: it is refused, naming the kinds, before anything is read.
    with pytest.raises(api.ArgumentError) as caught:
        api.decide_and_record(source, api.prepare(),  # type: ignore[arg-type]
                              audit_path=tmp_path / "t.db", clinician=None)
    assert (caught.value.parameter, caught.value.value) == ("source", source)
    assert str(caught.value).endswith(
        "expected FromCaseFile, FromBundleFile or FromEitherFile of a path (str or Path), "
        "FromDocument, or a Decided")
    assert not (tmp_path / "t.db").exists()
