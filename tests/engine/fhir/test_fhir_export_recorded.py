"""`calfrehab fhir export` with a trail that holds what the clinician
decided (clinical-basis §8): the export decides the case file as it is, so
its GuidanceResponse says so and names the recorded override or acceptance;
a referral the file gives now proposes no exercise and says the recorded
decision no longer stands."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from helpers import EXAMPLES

from calfrehab.cli.main import cli
from calfrehab.engine.trail.audit import AuditTrail

DISCLAIMER = ("Decision support: calfrehab proposes the next step from the recorded "
              "criteria; the treating clinician decides.")


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def export(case: Path, trail: Path) -> tuple[list[str], list[dict[str, Any]]]:
    bundle = json.loads(run("fhir", "export", str(case), "--audit", str(trail),
                            "--no-record"))
    resources = [e["resource"] for e in bundle["entry"]]
    (guidance,) = [r for r in resources if r["resourceType"] == "GuidanceResponse"]
    return [n["text"] for n in guidance["note"]], resources


def test_the_export_names_the_clinicians_override_and_a_referral_outranks_it(
        tmp_path: Path) -> None:
    case, trail = tmp_path / "case.json", tmp_path / "audit.sqlite3"
    shutil.copy(EXAMPLES / "runner-stuck-on-two-leg.json", case)
    run("next", str(case), "--audit", str(trail))
    notes, _ = export(case, trail)
    assert notes == [DISCLAIMER]  # nothing decided by a clinician: as before
    with AuditTrail(trail) as t:
        decision_id = t.entries(kind="decision")[-1].decision_id
    run("audit", "override", decision_id, "--audit", str(trail), "--clinician", "Dr A. Berg",
        "--reason", "pain 6/10 next morning", "--track", "straight_knee", "--decision", "hold")
    notes, _ = export(case, trail)
    assert notes[1] == DISCLAIMER
    assert notes[0].startswith("Recorded in calfrehab: a decision for the review of ")
    assert ("Overridden by Dr A. Berg on " in notes[0]
            and "on Straight knee (gastrocnemius): hold. Reason: pain 6/10 next morning."
            in notes[0])
    assert notes[0].endswith("This guidance does not apply it: what the clinician decided "
                             "stands until changed in calfrehab.")

    # A red flag entered since: a referral, no exercise proposed, and the
    # override said to no longer stand.
    doc = json.loads(case.read_text())
    doc["red_flags"] = ["calf_swelling_warmth"]
    case.write_text(json.dumps(doc))
    notes, resources = export(case, trail)
    assert not [r for r in resources if r["resourceType"] == "ServiceRequest"]
    assert [r["resourceType"] for r in resources].count("DetectedIssue") == 1
    assert notes[0].endswith("The case file now gives a referral: that recorded decision no "
                             "longer stands.")

    # A session entered since: the next review is proposed on it; the old
    # override is history, no longer named.
    doc["red_flags"] = []
    doc["sessions"].append({**doc["sessions"][-1], "date": doc["review_date"]})
    case.write_text(json.dumps(doc))
    notes, _ = export(case, trail)
    assert notes == [DISCLAIMER]
