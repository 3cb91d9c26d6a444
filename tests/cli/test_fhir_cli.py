"""fhir import, fhir export and next --fhir as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from helpers import EXAMPLES

from calfrehab.cli.main import cli
from calfrehab.engine.trail.audit import AuditTrail

FLARE = EXAMPLES / "plantar-next-morning-jump-flare.json"
SWELLING = EXAMPLES / "red-flag-recent-fluoroquinolone.json"


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), input=input)
    assert "Traceback" not in result.output and "Traceback" not in result.stderr
    return result.exit_code, result.stdout, result.stderr


def bundle_of(path: Path, tmp_path: Path) -> Path:
    out = tmp_path / f"{path.stem}.bundle.json"
    code, _, err = run("fhir", "export", str(path), "--case-only", "-o", str(out))
    assert code == 0, err
    return out


def comparable(decision: dict[str, Any]) -> dict[str, Any]:
    # What the rules decided; ids and the hash of the input file differ.
    return {k: decision[k] for k in ("outcome", "tracks", "reasons", "blockers", "rulebase")}


def test_import_writes_a_valid_case_file_that_decides_the_same(tmp_path: Path) -> None:
    bundle = bundle_of(FLARE, tmp_path)
    case_file = tmp_path / "case.json"
    code, out, err = run("fhir", "import", str(bundle), "-o", str(case_file))
    assert (code, out) == (0, ""), err
    assert run("validate", str(case_file))[0] == 0
    _, direct, _ = run("next", str(FLARE), "--json", "--no-record")
    _, via_fhir, _ = run("next", str(case_file), "--json", "--no-record")
    assert comparable(json.loads(via_fhir)) == comparable(json.loads(direct))


def test_next_decides_straight_from_a_bundle(tmp_path: Path) -> None:
    bundle = bundle_of(SWELLING, tmp_path)
    code, out, _ = run("next", "--fhir", str(bundle), "--json", "--no-record")
    assert code == 0
    _, direct, _ = run("next", str(SWELLING), "--json", "--no-record")
    assert comparable(json.loads(out)) == comparable(json.loads(direct))
    assert json.loads(out)["outcome"] == "refer"


def test_next_wants_a_case_or_a_bundle_not_both() -> None:
    code, _, err = run("next", "--no-record")
    assert code == 2 and "CASE file or --fhir BUNDLE" in err
    code, _, err = run("next", str(FLARE), "--fhir", str(FLARE), "--no-record")
    assert code == 2


def test_import_names_the_resource_and_element_it_cannot_map(tmp_path: Path) -> None:
    bundle_path = bundle_of(FLARE, tmp_path)
    bundle = json.loads(bundle_path.read_text())
    patient = next(e["resource"] for e in bundle["entry"]
                   if e["resource"]["resourceType"] == "Patient")
    patient["deceasedBoolean"] = False
    code, out, err = run("fhir", "import", "-", input=json.dumps(bundle))
    assert code == 1 and out == ""
    assert f"Patient/{patient['id']} Patient.deceasedBoolean:" in err
    code, _, err = run("fhir", "import", "-", input="{not json")
    assert code == 1 and "not valid JSON" in err


def test_export_records_the_decision_and_writes_its_fhir(tmp_path: Path) -> None:
    trail = tmp_path / "audit.sqlite3"
    out = tmp_path / "decision.json"
    code, _, err = run("fhir", "export", str(FLARE), "-o", str(out), "--audit", str(trail),
                       "--clinician", "dr-a")
    assert code == 0, err
    bundle = json.loads(out.read_text())
    types = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert {"GuidanceResponse", "RequestGroup", "ServiceRequest", "Provenance"} <= set(types)
    assert "Patient" in types  # the case travels with its decision
    decision_id = bundle["identifier"]["value"]
    with AuditTrail(trail) as opened:
        assert opened.get(decision_id).clinician == "dr-a"
        assert opened.verify().ok
    # a Bundle is accepted as the input too
    code, again, _ = run("fhir", "export", str(out), "--no-record")
    assert code == 0 and json.loads(again)["identifier"]["value"] != decision_id
