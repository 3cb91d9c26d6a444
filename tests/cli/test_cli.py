"""The command line as a user meets it (CliRunner, real files)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import EXAMPLES, rules_dir_with

from calfrehab.cli.main import cli

RUNNER = EXAMPLES / "runner-stuck-on-two-leg.json"
ANSI = re.compile(r"\x1b\[")
CONTRACT_KEYS = {"schema_version", "decision_id", "case_id", "review_date", "outcome",
                 "tracks", "reasons", "rulebase"}


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), input=input)
    assert "Traceback" not in result.output and "Traceback" not in result.stderr
    return result.exit_code, result.stdout, result.stderr


def test_next_prints_a_readable_decision_without_colour_when_piped() -> None:
    code, out, _ = run("next", str(RUNNER), "--no-record")
    assert code == 0
    assert "Straight knee (gastrocnemius): PROGRESS" in out
    assert "Single-leg heel raise, straight knee" in out
    assert "Bent knee (soleus): START" in out
    assert "the treating clinician decides" in out
    assert not ANSI.search(out)
    # Every line fits a terminal, except the one that repeats the case's path
    # as given (the checkout's own path, of any length).
    assert max(len(line) for line in out.splitlines() if str(RUNNER) not in line) <= 100


def test_next_json_has_the_contract_keys_and_reads_stdin() -> None:
    code, out, _ = run("next", "-", "--json", "--no-record", input=RUNNER.read_text())
    assert code == 0
    doc = json.loads(out)
    assert set(doc) >= CONTRACT_KEYS
    assert set(doc["tracks"]) == {"straight_knee", "bent_knee", "energy_storage"}
    assert doc["tracks"]["straight_knee"]["next"]["exercise"] == "single_leg_heel_raise"
    assert all(r["sources"] for r in doc["reasons"])
    assert doc["rulebase"]["sha256"] and len(doc["rulebase"]["sha256"]) == 64
    assert doc["firings"] and all("matched" in f for f in doc["firings"])


def test_next_invalid_case_exits_1_with_errors() -> None:
    code, _, err = run("next", str(EXAMPLES / "invalid" / "sets-as-string.json"), "--no-record")
    assert code == 1
    assert "program.straight_knee.sets" in err


def test_next_missing_file_and_usage_errors() -> None:
    code, _, err = run("next", "no-such-file.json", "--no-record")
    assert code == 1 and "cannot read" in err
    code, _, _ = run("next")
    assert code == 2


def test_next_records_in_the_audit_trail(tmp_path: Path) -> None:
    trail = tmp_path / "trail.sqlite3"
    code, out, _ = run("next", str(RUNNER), "--json", "--audit", str(trail),
                       "--clinician", "A. Physio")
    assert code == 0
    from calfrehab.engine.trail.audit import AuditTrail

    with AuditTrail(trail) as t:
        entry = t.get(json.loads(out)["decision_id"])
        assert entry.clinician == "A. Physio"
        assert entry.case_id == "RUN-0001"
        assert t.verify().ok


def test_explain_shows_how_why_not_and_sources() -> None:
    case = EXAMPLES / "rupture-nonop-week-4-isometric-gate.json"
    code, out, _ = run("explain", str(case), "--ids")
    assert code == 0
    assert "HOW: rules that fired" in out
    assert "WHY-NOT" in out
    assert "Sources" in out and "Willits" in out
    assert "injury.weeks_since" in out
    # By default, the physiotherapist's view: no ids, no fact paths.
    code, out, _ = run("explain", str(case))
    assert code == 0 and "HOW: what the rules found" in out and "WHY-NOT" in out
    assert "@" not in out and "injury.weeks_since" not in out and "sessions[" not in out
    assert "Willits 2010" in out
    code, out, _ = run("explain", str(case), "--json")
    data = json.loads(out)
    assert {"how", "why_not", "sources", "decision"} <= set(data)
    assert all(c["paths"] or c.get("derived_by") is not None or c["value"] is None
               for f in data["how"] for c in f["conditions"])


def test_validate_files_directories_and_json() -> None:
    code, out, _ = run("validate", str(EXAMPLES))
    assert code == 0 and "invalid" in out.splitlines()[-1]
    code, out, _ = run("validate", str(EXAMPLES / "invalid"), "--json")
    assert code == 1
    rows = json.loads(out)
    assert rows and not any(r["valid"] for r in rows)
    assert all(r["errors"] for r in rows)
    code, out, _ = run("validate", "-", input="{not json")
    assert code == 1 and "line 1, column 2" in out


def test_schema_is_a_json_schema_for_the_case() -> None:
    code, out, _ = run("schema")
    schema = json.loads(out)
    assert code == 0
    assert schema["type"] == "object"
    assert {"schema_version", "case_id", "review_date", "patient", "condition",
            "program"} <= set(schema["required"])


def test_rules_list_show_check() -> None:
    code, out, _ = run("rules", "list", "--json")
    rows = json.loads(out)
    assert code == 0 and len(rows) > 30 and all(r["sources"] for r in rows)
    code, out, _ = run("rules", "show", "rupture-gate-single-leg")
    assert code == 0 and "injury.weeks_since" in out and '"$lt"' in out
    code, _, err = run("rules", "show", "no-such-rule")
    assert code == 1 and "no rule" in err


def test_rules_check_reports_problems_with_exit_1(tmp_path: Path) -> None:
    bad = rules_dir_with(tmp_path, {"bad.yaml": "rules:\n  - id: Bad Id\n"})
    code, _, err = run("rules", "check", str(bad))
    assert code == 1 and "bad.yaml" in err
    from calfrehab.engine.knowledge.loader import default_rules_dir

    code, out, _ = run("rules", "check", str(default_rules_dir()))
    assert code == 0 and out.startswith("ok:")


@pytest.mark.parametrize("case", ["plantar-single-leg-to-weighted.json",
                                  "red-flag-recent-fluoroquinolone.json"])
def test_clinic_rules_directory_is_used(tmp_path: Path, case: str) -> None:
    # A clinic's own rules: the shipped ones with the ladder's load step changed.
    from calfrehab.engine.knowledge.loader import default_rules_dir

    target = rules_dir_with(tmp_path, {}, keep_shipped_rules=True)
    ladder = (default_rules_dir() / "ladder.yaml").read_text()
    (target / "ladder.yaml").write_text(ladder.replace("first_load_kg: 5", "first_load_kg: 7.5"))
    code, out, _ = run("next", str(EXAMPLES / case), "--json", "--no-record",
                       "--rules", str(target))
    doc = json.loads(out)
    assert code == 0
    if doc["outcome"] == "continue":
        assert doc["tracks"]["straight_knee"]["next"]["load_kg"] == 7.5
    from calfrehab.engine.knowledge.loader import rulebase_sha256

    assert doc["rulebase"]["sha256"] == rulebase_sha256(target)


def test_a_missing_rules_directory_is_a_usage_error() -> None:
    code, _, err = run("next", str(RUNNER), "--no-record", "--rules", "no-such-rules-dir")
    assert code == 2 and "no-such-rules-dir" in err


def test_why_not_names_the_rule_that_overruled_a_progression(tmp_path: Path) -> None:
    # Week 8 after rupture on single-leg raises: the progression holds on
    # pain and dose, but the week gate regresses; WHY-NOT must say so.
    doc = json.loads((EXAMPLES / "rupture-nonop-week-10-single-leg.json").read_text())
    doc["condition"]["injury_date"] = doc["condition"]["onset_date"] = "2026-01-01"
    doc["review_date"] = "2026-03-01"
    for session in doc["sessions"]:
        session["date"] = "2026-02-2" + session["date"][-1]
        for ex in session["exercises"]:
            ex["exercise"] = ex["exercise"].replace("two_leg_heel", "single_leg_heel")
    doc["program"]["straight_knee"]["exercise"] = "single_leg_heel_raise"
    doc["assessments"] = []
    case = tmp_path / "week8.json"
    case.write_text(json.dumps(doc))
    code, out, _ = run("explain", str(case), "--json")
    assert code == 0
    why = {w["track"]: w for w in json.loads(out)["why_not"]}["straight_knee"]
    progress = next(r for r in why["rules"] if r["rule"] == "progress-track@straight_knee")
    assert progress["holds"]
    assert [o["rule"] for o in progress["overruled_by"]] == [
        "rupture-regress-ahead-of-week@straight_knee"]
