"""Knowledge-base tests as data: the shipped case tables (rules/cases/), the
coverage they give, and the table runner itself (calfrehab/engine/ruletest/casetable.py and
`calfrehab rules test`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from calfrehab.cli.main import cli
from calfrehab.engine.casefile.docpath import PathError, parse_path, remove_path, set_path
from calfrehab.engine.knowledge.loader import default_rules_dir, rule_files
from calfrehab.engine.ruletest.casetable import (
    TABLE_LEVEL,
    TableReport,
    apply_changes,
    load_table,
    run_tables,
    table_paths,
)
from calfrehab.engine.ruletest.coursetable import course_paths

SHIPPED = default_rules_dir()


def _shipped_case_ids() -> list[tuple[str, str]]:
    ids = []
    for path in table_paths(SHIPPED):
        table, failures = load_table(path)
        ids += [(f.file, f.name) for f in failures]
        if table is not None:
            ids += [(path.name, case.name) for case in table.cases]
    # Course tables run with the case tables and report the same way.
    for path in course_paths(SHIPPED):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        ids += [(f"courses/{path.name}", row["name"]) for row in data["courses"]]
    return ids


CASE_IDS = _shipped_case_ids()


@pytest.fixture(scope="module")
def shipped_report() -> TableReport:
    return run_tables()


@pytest.fixture
def rules_copy(tmp_path: Path) -> Path:
    target = tmp_path / "clinic-rules"
    shutil.copytree(SHIPPED, target, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    return target


def _result(report: TableReport, file: str, name: str) -> Any:
    found = [r for r in report.results if (r.file, r.name) == (file, name)]
    assert len(found) == 1, f"{file} :: {name} ran {len(found)} times"
    return found[0]


# ------------------------------------------------------------ shipped tables


@pytest.mark.parametrize(("file", "name"), CASE_IDS, ids=[f"{f}::{n}" for f, n in CASE_IDS])
def test_shipped_case(shipped_report: TableReport, file: str, name: str) -> None:
    result = _result(shipped_report, file, name)
    assert result.passed, "\n".join(result.problems)


def test_shipped_coverage_is_complete(shipped_report: TableReport) -> None:
    assert shipped_report.uncovered_rules == []
    assert shipped_report.decision_rules_without_negative_case == []
    assert shipped_report.ok
    assert len(shipped_report.results) == len(CASE_IDS) >= 100


def test_every_rule_file_has_its_table() -> None:
    tables = {p.name for p in table_paths(SHIPPED)}
    for path in rule_files(SHIPPED):
        name = f"{path.stem}.cases.yaml"
        assert name in tables, f"{path.name} has no case table cases/{name}"
        table, failures = load_table(SHIPPED / "cases" / name)
        assert table is not None and not failures
        assert table.rules_file == path.name


def test_shared_examples_are_table_cases(shipped_report: TableReport, shared_dir: Path) -> None:
    """Every valid shared example is, document for document, a passing case
    of some table, so the tables carry the examples' expectations."""
    examples = {p.name: json.loads(p.read_text(encoding="utf-8"))
                for p in shared_dir.glob("*.json") if p.name != "invalid-case.json"}
    assert examples
    found: dict[str, list[tuple[str, str]]] = {}
    for path in table_paths(SHIPPED):
        table, _ = load_table(path)
        assert table is not None
        for case in table.cases:
            doc = apply_changes(table.base, case)
            for name, example in examples.items():
                if doc == example:
                    found.setdefault(name, []).append((path.name, case.name))
    for name in examples:
        assert name in found, f"no table case reproduces shared/examples/{name}"
        for file, case_name in found[name]:
            assert _result(shipped_report, file, case_name).passed


def test_cli_runs_the_shipped_tables() -> None:
    out = CliRunner().invoke(cli, ["rules", "test"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[-1] == f"{len(CASE_IDS)} passed, 0 failed"
    assert sum(line.startswith("PASS ") for line in lines) == len(CASE_IDS)
    assert "coverage: all" in out.output

    as_json = CliRunner().invoke(cli, ["rules", "test", "--json", str(SHIPPED)])
    assert as_json.exit_code == 0
    doc = json.loads(as_json.output)
    assert doc["ok"] is True and doc["failed"] == 0
    assert doc["coverage"]["uncovered_rules"] == []


# ------------------------------------------------------------ the runner


def test_a_changed_threshold_fails_the_case_that_pins_it(rules_copy: Path) -> None:
    # A clinic relaxes the calf-strain pain-free limit from 2 to 3: the one
    # place it is written is the rule base's parameters.
    path = rules_copy / "rulebase.yaml"
    text = path.read_text(encoding="utf-8")
    old = "strain_pain_limit: 2\n"
    assert text.count(old) == 1
    path.write_text(text.replace(old, "strain_pain_limit: 3\n"), encoding="utf-8")

    report = run_tables(rules_copy)
    assert not report.ok
    failed = {(r.file, r.name): r.problems for r in report.results if not r.passed}
    key = ("calf-strain.cases.yaml",
           "pain 3 during is inside the general model but not pain-free - hold")
    assert key in failed
    assert "straight_knee: decision is progress, expected hold" in failed[key]
    assert "calf-strain-pain-free-gate@straight_knee did not fire" in failed[key]

    out = CliRunner().invoke(cli, ["rules", "test", str(rules_copy)])
    assert out.exit_code == 1
    assert f"FAIL calf-strain.cases.yaml :: {key[1]}" in out.output
    assert "     - straight_knee: decision is progress, expected hold" in out.output
    assert out.output.splitlines()[-1].endswith(f"{len(failed)} failed")
    # The --rules form names the directory too.
    assert CliRunner().invoke(cli, ["rules", "test", "--rules", str(rules_copy)]).exit_code == 1


def test_a_missing_table_is_a_coverage_gap(rules_copy: Path) -> None:
    (rules_copy / "cases" / "energy-storage.cases.yaml").unlink()
    report = run_tables(rules_copy)
    assert report.failed == 0
    assert "gate-top-rung" in report.uncovered_rules
    assert not report.ok
    out = CliRunner().invoke(cli, ["rules", "test", str(rules_copy)])
    assert out.exit_code == 1
    assert "rules no case fired" in out.output and "gate-top-rung" in out.output


def test_a_decision_rule_never_shown_not_firing_is_a_coverage_gap(rules_copy: Path) -> None:
    path = rules_copy / "cases" / "red-flags.cases.yaml"
    table = yaml.safe_load(path.read_text(encoding="utf-8"))
    for case in table["cases"]:
        case["not_fires"] = [k for k in case.get("not_fires", [])
                             if k != "refer-unremitting-night-pain"]
    path.write_text(yaml.safe_dump(table, sort_keys=False), encoding="utf-8")
    report = run_tables(rules_copy)
    assert report.failed == 0 and report.uncovered_rules == []
    assert report.decision_rules_without_negative_case == ["refer-unremitting-night-pain"]
    out = CliRunner().invoke(cli, ["rules", "test", str(rules_copy)])
    assert out.exit_code == 1
    flat = " ".join(out.output.split())  # report lines wrap at 80 columns
    assert "not firing where one condition fails (1): refer-unremitting-night-pain" in flat


def test_a_negative_case_counts_only_where_one_condition_fails(rules_copy: Path) -> None:
    # Keep only two weak negatives for the VISA-A referral: a plantar case (a
    # kind the rule does not apply to) and the base case, where all three of
    # its conditions fail (no 12 weeks of loading, no assessment span, no
    # VISA-A change). Neither shows it "not firing where one condition fails".
    path = rules_copy / "cases" / "red-flags.cases.yaml"
    table = yaml.safe_load(path.read_text(encoding="utf-8"))
    for case in table["cases"]:
        case["not_fires"] = [k for k in case.get("not_fires", [])
                             if k != "refer-no-improvement-visa-a"]
    table["cases"] += [
        {"name": "plantar case lists the VISA-A rule",
         "set": {"condition.kind": "plantar_fasciopathy"},
         "not_fires": ["refer-no-improvement-visa-a"]},
        {"name": "base case lists the VISA-A rule", "not_fires": ["refer-no-improvement-visa-a"]},
    ]
    path.write_text(yaml.safe_dump(table, sort_keys=False), encoding="utf-8")
    report = run_tables(rules_copy)
    assert report.failed == 0
    assert report.decision_rules_without_negative_case == ["refer-no-improvement-visa-a"]


BROKEN_CASES = [
    {"name": "unknown rule key",
     "expect": {"outcome": "continue"},
     "fires": ["refer-calf-swelling"], "not_fires": ["progress-track@nowhere"]},
    {"name": "invalid after changes",
     "set": {"sessions[1].exercises[0].pain_during": 11, "sessions[0].pain_next_mornig": 2}},
    {"name": "path not in the document", "set": {"sessions[7].pain_next_morning": 2}},
    {"name": "removing what is not there", "remove": ["patient.height_cm"]},
    {"name": "malformed path", "set": {"sessions..date": "2026-11-01"}},
    {"name": "misspelt expectation field", "expects": {"outcome": "refer"}},
    {"name": "wrong decision word", "expect": {"straight_knee": "begin"}},
    {"name": "expectation that does not hold",
     "expect": {"outcome": "refer", "bent_knee": "hold"},
     "next": {"straight_knee": "two_leg_heel_raise", "energy_storage": "pogo_hops"},
     "not_fires": ["progress-track@straight_knee"], "reasons": ["refer-pain-at-rest"]},
    {"name": "still fine", "expect": {"outcome": "continue", "straight_knee": "progress"}},
]


def test_broken_tables_fail_cleanly_naming_file_and_case(rules_copy: Path) -> None:
    base = yaml.safe_load((rules_copy / "cases" / "red-flags.cases.yaml").read_text())["base"]
    cases_dir = rules_copy / "cases"
    (cases_dir / "zz-broken.cases.yaml").write_text(yaml.safe_dump(
        {"rules_file": "red-flags.yaml", "base": base, "cases": BROKEN_CASES},
        sort_keys=False), encoding="utf-8")
    (cases_dir / "zz-not-yaml.cases.yaml").write_text("rules_file: [unclosed\n", encoding="utf-8")
    (cases_dir / "zz-no-base.cases.yaml").write_text(
        "rules_file: red-flags.yaml\ncases: [{name: x}]\n", encoding="utf-8")
    (cases_dir / "zz-wrong-file.cases.yaml").write_text(yaml.safe_dump(
        {"rules_file": "red-flag.yaml", "base": base, "cases": [{"name": "ok"}]}),
        encoding="utf-8")

    report = run_tables(rules_copy)
    assert not report.ok
    problems = {(r.file, r.name): r.problems for r in report.results if not r.passed}
    broken = "zz-broken.cases.yaml"
    assert problems[(broken, "unknown rule key")] == [
        "unknown rule key `refer-calf-swelling` (not a rule, or not on that track); "
        "did you mean `refer-calf-swelling-warmth`?",
        "unknown rule key `progress-track@nowhere` (not a rule, or not on that track); "
        "did you mean `progress-track`?",
    ]
    invalid = "\n".join(problems[(broken, "invalid after changes")])
    assert "invalid case after changes (2 error(s))" in invalid
    assert "sessions[1].exercises[0].pain_during: expected a value ≤ 10 (got 11)" in invalid
    assert "did you mean `pain_next_morning`?" in invalid
    assert problems[(broken, "path not in the document")] == [
        "bad change: `sessions[7].pain_next_morning`: no item `sessions[7]` (the list has 2)"]
    assert problems[(broken, "removing what is not there")] == [
        "bad change: `patient.height_cm`: no field to remove"]
    assert "malformed path" in problems[(broken, "malformed path")][0]
    assert problems[(broken, "misspelt expectation field")] == [
        "bad case entry: expects: unknown field"]
    assert problems[(broken, "wrong decision word")][0].startswith(
        "bad case entry: expect.straight_knee:")
    wrong = problems[(broken, "expectation that does not hold")]
    assert wrong[:-1] == [
        "outcome is continue, expected refer",
        "bent_knee: decision is progress, expected hold",
        "straight_knee: next exercise is weighted_single_leg_heel_raise, "
        "expected two_leg_heel_raise",
        "energy_storage: next is none, expected pogo_hops",
        "progress-track@straight_knee fired",
    ]
    assert wrong[-1].startswith("the decision's reasons do not name refer-pain-at-rest "
                                "(they name ")
    assert (broken, "still fine") not in problems
    assert problems[("zz-not-yaml.cases.yaml", TABLE_LEVEL)][0].startswith("not valid YAML")
    assert problems[("zz-no-base.cases.yaml", TABLE_LEVEL)] == ["base: required field is missing"]
    assert problems[("zz-wrong-file.cases.yaml", TABLE_LEVEL)] == [
        "rules_file `red-flag.yaml` is not a rule file of this directory"]

    out = CliRunner().invoke(cli, ["rules", "test", str(rules_copy)])
    assert out.exit_code == 1
    assert out.exception is None or isinstance(out.exception, SystemExit)
    assert "Traceback" not in out.output
    assert f"FAIL {broken} :: unknown rule key" in out.output
    assert f"FAIL zz-not-yaml.cases.yaml :: {TABLE_LEVEL}" in out.output
    assert f"PASS {broken} :: still fine" in out.output
    doc = json.loads(CliRunner().invoke(cli, ["rules", "test", "--json", str(rules_copy)]).output)
    assert doc["ok"] is False and doc["failed"] == len(problems)


def test_shared_invalid_example_as_a_case_names_every_error(
    rules_copy: Path, shared_dir: Path
) -> None:
    """shared/examples/invalid-case.json as a table case: a clean failure that
    names each error the example README expects."""
    invalid = json.loads((shared_dir / "invalid-case.json").read_text(encoding="utf-8"))
    (rules_copy / "cases" / "zz-invalid.cases.yaml").write_text(yaml.safe_dump(
        {"rules_file": "red-flags.yaml", "base": invalid,
         "cases": [{"name": "shared invalid example", "expect": {"outcome": "continue"}}]}),
        encoding="utf-8")
    report = run_tables(rules_copy)
    text = "\n".join(_result(report, "zz-invalid.cases.yaml", "shared invalid example").problems)
    for needle in ("case_id:", "red_flags[0]:", "calf_swelling",
                   "program.straight_knee.exercise:", "sessions[0].date: is after review_date",
                   "sessions[0].exercises[0].pain_during:",
                   "unknown field `pain_next_mornig`; did you mean `pain_next_morning`?"):
        assert needle in text


def test_no_tables_is_a_failure(rules_copy: Path) -> None:
    shutil.rmtree(rules_copy / "cases")
    shutil.rmtree(rules_copy / "courses")
    report = run_tables(rules_copy)
    assert report.results == [] and not report.ok
    out = CliRunner().invoke(cli, ["rules", "test", str(rules_copy)])
    assert out.exit_code == 1
    assert "no case tables in" in out.output


# ------------------------------------------------------------ paths


def test_paths_are_written_as_error_messages_write_them() -> None:
    assert parse_path("sessions[2].exercises[0].pain_during") == [
        "sessions", 2, "exercises", 0, "pain_during"]
    for bad in ("", ".a", "a..b", "a[x]", "a.[1]", "[0]", "a b"):
        with pytest.raises(PathError):
            parse_path(bad)
    doc: dict[str, Any] = {"a": {"b": [1, 2]}, "c": None}
    set_path(doc, "a.b[2]", 3)  # one past the end appends
    set_path(doc, "a.b[0]", 0)
    set_path(doc, "c.d", 4)  # a null on the way becomes an object
    set_path(doc, "e.f", 5)
    assert doc == {"a": {"b": [0, 2, 3]}, "c": {"d": 4}, "e": {"f": 5}}
    with pytest.raises(PathError, match="past the end"):
        set_path(doc, "a.b[5]", 1)
    with pytest.raises(PathError, match="is not a list"):
        set_path(doc, "e[0]", 1)
    remove_path(doc, "a.b[1]")
    remove_path(doc, "e")
    assert doc == {"a": {"b": [0, 3]}, "c": {"d": 4}}
    with pytest.raises(PathError):
        remove_path(doc, "a.x")


def test_a_case_may_be_decided_under_a_clinic_s_parameters(rules_copy: Path) -> None:
    # One table shows the shipped set-up and a clinic's: `parameters` decides
    # the case as a rulebase.yaml with those values would; a parameter the
    # rulebase does not have is a failed case naming it, not a crash.
    base = yaml.safe_load(
        (rules_copy / "cases" / "energy-storage.cases.yaml").read_text())["base"]
    bent_100 = {"program.bent_knee.load_kg": 100,
                **{f"sessions[{i}].exercises[1].load_kg": 100 for i in range(3)}}
    (rules_copy / "cases" / "zz-clinic.cases.yaml").write_text(yaml.safe_dump({
        "rules_file": "energy-storage.yaml", "base": base, "cases": [
            {"name": "shipped: a goal", "set": bent_100, "expect": {"energy_storage": "start"}},
            {"name": "clinic: a gate", "set": bent_100, "parameters": {"soleus_gate_bw": 1.5},
             "expect": {"energy_storage": "not_started"},
             "fires": ["gate-soleus-goal@energy_storage"]},
            {"name": "clinic: a gate at 1.4", "set": bent_100,
             "parameters": {"soleus_gate_bw": 1.4}, "expect": {"energy_storage": "start"}},
            {"name": "unknown parameter", "parameters": {"soleus_gate": 1.5}},
        ]}, sort_keys=False), encoding="utf-8")
    report = run_tables(rules_copy)
    results = {r.name: r for r in report.results if r.file == "zz-clinic.cases.yaml"}
    for name in ("shipped: a goal", "clinic: a gate", "clinic: a gate at 1.4"):
        assert results[name].passed, results[name].problems
    assert not results["unknown parameter"].passed
    unknown = results["unknown parameter"].problems[0]
    assert "soleus_gate: not parameters of rulebase.yaml" in unknown
