"""The rule language's conformance tables (tests/conformance/language/), run
through durable-rules: in / not_in, missing values, prescribe merges and the
limit on the disjunctive normal form. The probes are written for the tables,
not taken from the clinical rules (see the tables' README)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import REPO, rules_dir_with, set_path

from calfrehab.engine import api
from calfrehab.engine.explanation.explain import prescribe_values, rules_that_hold

TABLES = Path(__file__).resolve().parent / "language"
PROBE = {"title": "conformance probe", "rationale": "a rule written for a conformance table",
         "sources": ["silbernagel2007"]}
# Progresses the runner's straight-knee track (two-leg to single-leg raises),
# so the prescribe tables have a next prescription to adjust.
PROGRESS = {**PROBE, "id": "go", "applies_to": {"tracks": ["straight_knee"]},
            "when": {"fact": "track.rung", "op": "==", "value": 1},
            "then": {"decision": "progress"}}
# Every started track must be decided (a rule base with a gap is an engine
# error), so the condition probes come with a rule that holds it.
HOLD = {**PROBE, "id": "hold", "applies_to": {"tracks": ["straight_knee"]},
        "when": {"fact": "track.started", "op": "==", "value": True},
        "then": {"decision": "hold"}}


def _cases(name: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    table = yaml.safe_load((TABLES / name).read_text(encoding="utf-8"))
    return [(table, case) for case in table["cases"]]


def _ids(cases: list[tuple[dict[str, Any], dict[str, Any]]]) -> list[str]:
    return [case["note"] for _, case in cases]


def _case_document(table: dict[str, Any], case: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((REPO / table["case"]).read_text(encoding="utf-8"))
    for path, value in (case.get("set") or {}).items():
        if value is None:
            parent, _, key = path.rpartition(".")
            holder = doc
            for part in parent.split(".") if parent else []:
                holder = holder[part]
            holder.pop(key, None)
        else:
            doc = set_path(doc, path, value)
    return doc


def _rules_text(rules: list[dict[str, Any]]) -> str:
    return yaml.safe_dump({"rules": rules}, sort_keys=False)


def _decide(tmp_path: Path, rules: list[dict[str, Any]], doc: dict[str, Any]) -> api.Decided:
    directory = rules_dir_with(tmp_path, {"probes.yaml": _rules_text(rules)})
    decided = api.decide_document(doc, api.prepare(directory))
    # The plain-Python judgement agrees with what durable-rules fired.
    ev = decided.evaluation
    held, _ = rules_that_hold(ev.compiled, ev.facts.values(), prescribe_values(ev))
    assert held == {f.rule for f in ev.firings}
    return decided


CONDITION_CASES = _cases("in-not-in.yaml") + _cases("missing.yaml") + _cases("dnf-limit.yaml")


@pytest.mark.parametrize(("table", "case"), CONDITION_CASES, ids=_ids(CONDITION_CASES))
def test_condition(table: dict[str, Any], case: dict[str, Any], tmp_path: Path) -> None:
    probe: dict[str, Any] = {**PROBE, "id": "probe", "when": case["when"],
                             "then": {"assert": "probe_held"}}
    if case.get("track"):
        probe["applies_to"] = {"tracks": ["straight_knee"]}
    doc = _case_document(table, case)
    if case["want"] == "error":
        directory = rules_dir_with(tmp_path, {"probes.yaml": _rules_text([HOLD, probe])})
        with pytest.raises(api.RuleError) as err:
            api.compile_rules(directory)
        assert case["error"] in err.value.render()
        return
    decided = _decide(tmp_path, [HOLD, probe], doc)
    fired = {f.rule for f in decided.evaluation.firings}
    key = "probe@straight_knee" if case.get("track") else "probe"
    assert (key in fired) == (case["want"] == "fires"), sorted(fired)


PRESCRIBE_CASES = _cases("prescribe.yaml")


@pytest.mark.parametrize(("table", "case"), PRESCRIBE_CASES, ids=_ids(PRESCRIBE_CASES))
def test_prescribe(table: dict[str, Any], case: dict[str, Any], tmp_path: Path) -> None:
    rules = [PROGRESS] + [{**PROBE, "phase": "prescribe",
                           "applies_to": {"tracks": ["straight_knee"]}, **rule}
                          for rule in case["rules"]]
    decided = _decide(tmp_path, rules, _case_document(table, case))
    td = decided.decision.tracks["straight_knee"]
    assert td.decision == "progress" and td.next is not None
    nxt = td.next.model_dump()
    for field, want in case["want_next"].items():
        if field == "cues":
            assert nxt["cues"][: len(want)] == want, nxt["cues"]
        else:
            assert nxt[field] == want, field


def test_the_tables_cover_what_they_promise() -> None:
    # A guard on the tables themselves: each topic has cases on both sides.
    wants = [case["want"] for _, case in CONDITION_CASES]
    assert {"fires", "quiet", "error"} <= set(wants)
    ops = json.dumps([case["when"] for _, case in CONDITION_CASES])
    for op in ('"in"', '"not_in"', '"missing"', '"exists"', '"not"', '"to_fact"'):
        assert op in ops, op
    assert len(PRESCRIBE_CASES) >= 5
