"""Engine conformance, as data: small rule sets, an input, the expected
firings and decisions (tests/conformance/cases.yaml); plus the reasoner's
error handling and its memory discipline."""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import REPO, rules_dir_with, set_path

from calfrehab.engine import api
from calfrehab.engine.errors import EngineError, RuleError
from calfrehab.engine.explanation.explain import prescribe_values, rules_that_hold
from calfrehab.engine.inference.driver import Reasoner

CASES = yaml.safe_load((Path(__file__).resolve().parent / "cases.yaml").read_text())


def _load_case(spec: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((REPO / spec["case"]).read_text())
    for path, value in (spec.get("set") or {}).items():
        doc = set_path(doc, path, value)
    return doc


@pytest.mark.parametrize("spec", CASES, ids=[c["name"] for c in CASES])
def test_conformance(spec: dict[str, Any], tmp_path: Path) -> None:
    rules = rules_dir_with(tmp_path, {"rules.yaml": spec["rules"]})
    reasoner = api.prepare(rules)
    decided = api.decide_document(_load_case(spec), reasoner)
    fired = [f.rule for f in decided.evaluation.firings]
    if "firings" in spec:
        assert fired == spec["firings"]
    if "firings_unordered" in spec:
        assert sorted(fired) == sorted(spec["firings_unordered"])
    assert decided.decision.outcome == spec.get("outcome", "continue")
    for track, expected in spec["decisions"].items():
        assert decided.decision.tracks[track].decision == expected, track
    # The plain-Python judgement agrees with what durable-rules fired.
    ev = decided.evaluation
    held, _ = rules_that_hold(ev.compiled, ev.facts.values(), prescribe_values(ev))
    assert held == set(fired)


def test_same_case_same_trace(tmp_path: Path) -> None:
    reasoner = api.prepare(None)
    doc = json.loads((REPO / "examples" / "plantar-next-morning-jump-flare.json").read_text())
    first = api.decide_document(doc, reasoner)
    for _ in range(20):
        again = api.decide_document(doc, reasoner)
        assert again.evaluation.firings == first.evaluation.firings
        a = again.decision.model_dump(mode="json")
        b = first.decision.model_dump(mode="json")
        a.pop("decision_id")
        b.pop("decision_id")
        assert a == b


def test_an_action_that_raises_is_an_engine_error_naming_the_rule(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reasoner = api.prepare(None)
    doc = json.loads((REPO / "examples" / "runner-stuck-on-two-leg.json").read_text())
    original = Reasoner._on_fire

    def broken(self: Reasoner, ctx: Any, target: Any, *args: Any) -> None:
        if target[0].partition("@")[0] == "dose-completed":  # the instance key
            raise ZeroDivisionError("boom")
        original(self, ctx, target, *args)

    monkeypatch.setattr(Reasoner, "_on_fire", broken)
    with pytest.raises(EngineError) as err:
        api.decide_document(doc, reasoner)
    assert "dose-completed@straight_knee" in str(err.value)
    assert err.value.rule_id == "dose-completed@straight_knee"
    monkeypatch.undo()
    # The host is still usable after the failure, with no state left behind.
    assert api.decide_document(doc, reasoner).decision.outcome == "continue"


def test_every_binding_is_the_value_of_its_fact() -> None:
    """A firing records the facts its rule matched by the aliases of the
    alternative (disjunct) that fired: a rule with `any` must not record one
    alternative's values under another's fact names."""
    reasoner = api.prepare(None)
    multi = {key for key, inst in reasoner.compiled.instances.items()
             if len({d.aliases for d in inst.disjuncts}) > 1}
    spec = importlib.util.spec_from_file_location("casegen", REPO / "benchmarks" / "casegen.py")
    assert spec is not None and spec.loader is not None
    casegen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(casegen)
    checked = 0
    for doc in casegen.generate_cases(300, seed=7):
        ev = reasoner.evaluate(api.validate_document(doc))
        values = {**ev.values(), **(prescribe_values(ev) or {})}
        for firing in ev.firings:
            for b in firing.matched:
                assert b.value == values.get(b.fact), (doc["case_id"], firing.rule, b)
            checked += firing.rule in multi
    assert checked >= 50  # rules with alternatives fired, and were checked


def test_evaluating_warns_nothing() -> None:
    """No warning per action or per case: durable-rules' own Python host
    read a deprecated clock on every action (a warning each on Python
    3.12+); the driver calls its C engine directly."""
    reasoner = api.prepare(None)
    docs = [json.loads(p.read_text()) for p in sorted((REPO / "examples").glob("*.json"))]
    assert len(docs) >= 10
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for doc in docs:
            api.decide_document(doc, reasoner)


def test_no_case_state_is_left_after_10000_evaluations() -> None:
    """The reused state of each ruleset holds no fact between cases; the
    driver with a state per case (on a durable-rules that cannot retract
    safely, and the oracle) deletes every state it made."""
    reasoner = Reasoner(api.prepare(None).compiled, reuse_states=False)
    doc = json.loads((REPO / "examples" / "plantar-next-morning-jump-flare.json").read_text())
    case = api.validate_document(doc)
    first = int(next(Reasoner._sids))
    for _ in range(10_000):
        reasoner.evaluate(case)
    last = int(next(Reasoner._sids))
    sids = [f"c{n}" for n in range(first, last)]
    assert len(sids) >= 10_000
    for ruleset in reasoner.ruleset_names:
        assert reasoner.host.state_count(ruleset, sids) == 0, ruleset
    reused = Reasoner(reasoner.compiled, reuse_states=True)
    for _ in range(300):
        reused.evaluate(case)
    for ruleset in reused.ruleset_names:
        assert reused.host.facts_held(ruleset, reused.sid) == [], ruleset


BAD_RULES = [
    ("not: [valid\n", "not valid YAML", 2),
    ("rules:\n  - id: x1\n    title: abc\n    rationale: long enough text\n"
     "    when: {fact: track.rung, op: '>', value: 1}\n    then: {decision: hold}\n",
     "sources: required field is missing", 2),
    ("rules:\n  - id: x2\n    title: abc\n    rationale: long enough text\n    sources: [alfredson1998]\n"
     "    applies_to: {tracks: [straight_knee]}\n"
     "    when: {fact: track.pain_durin_last, op: '>', value: 1}\n    then: {decision: hold}\n",
     "did you mean `straight_knee.pain_during_last`", 2),
    ("rules:\n  - id: x3\n    title: abc\n    rationale: long enough text\n    sources: [alfredson1998]\n"
     "    applies_to: {tracks: [straight_knee]}\n"
     "    when: {fact: track.rung, op: '>', value: 'two'}\n    then: {decision: hold}\n",
     "straight_knee.rung is int", 2),
    ("rules:\n  - id: x4\n    title: abc\n    rationale: long enough text\n    sources: [alfredson1998]\n"
     "    applies_to: {tracks: [straight_knee]}\n"
     "    when: {fact: track.exercise, op: '==', value: single_leg_raise}\n"
     "    then: {decision: hold}\n",
     "unknown exercise id `single_leg_raise`", 2),
    ("rules:\n  - id: x5\n    title: abc\n    rationale: long enough text\n    sources: [alfredson1998]\n"
     "    applies_to: {tracks: [straight_knee], conditions: [achilles_midprotion]}\n"
     "    when: {fact: track.rung, op: '>', value: 1}\n    then: {decision: hold}\n",
     "unknown condition kind `achilles_midprotion`", 2),
    ("rules:\n  - id: x6\n    title: abc\n    rationale: long enough text\n    sources: [nobody2020]\n"
     "    applies_to: {tracks: [straight_knee]}\n"
     "    when: {fact: track.rung, op: '>', value: 1}\n    then: {decision: hold}\n",
     "unknown source `nobody2020`", 2),
    ("rules:\n  - id: refer-systemic-symptoms\n    title: abc\n    rationale: long enough text\n"
     "    sources: [alfredson1998]\n"
     "    when: {fact: red_flags.count, op: '>', value: 1}\n    then: {refer: true}\n",
     "duplicate rule id", 2),
]


@pytest.mark.parametrize("text,message,line", BAD_RULES)
def test_bad_rule_files_are_reported_with_file_line_and_rule(
    tmp_path: Path, text: str, message: str, line: int
) -> None:
    rules = rules_dir_with(tmp_path, {"zz-bad.yaml": text}, keep_shipped_rules=True)
    with pytest.raises(RuleError) as err:
        api.compile_rules(rules)
    rendered = err.value.render()
    assert message in rendered
    assert f"zz-bad.yaml:{line}" in rendered


def test_negation_cycle_is_rejected(tmp_path: Path) -> None:
    text = """rules:
  - id: a
    title: a flag
    rationale: depends on not b
    sources: [alfredson1998]
    when: {fact: flag_b, op: "==", value: false}
    then: {assert: flag_a}
  - id: b
    title: b flag
    rationale: depends on not a
    sources: [alfredson1998]
    when: {fact: flag_a, op: "==", value: false}
    then: {assert: flag_b}
"""
    rules = rules_dir_with(tmp_path, {"cycle.yaml": text})
    with pytest.raises(RuleError, match="depend on each other"):
        api.compile_rules(rules)


def test_a_rule_base_that_does_not_refer_every_red_flag_is_not_usable(tmp_path: Path) -> None:
    rules = rules_dir_with(tmp_path, {}, keep_shipped_rules=True)
    (rules / "red-flags.yaml").unlink()
    with pytest.raises(RuleError) as err:
        api.compile_rules(rules)
    assert "red_flag.calf_swelling_warmth" in err.value.render()


def test_an_emptied_rule_file_is_an_error(tmp_path: Path) -> None:
    rules = rules_dir_with(tmp_path, {}, keep_shipped_rules=True)
    (rules / "calf-strain.yaml").write_text("")
    with pytest.raises(RuleError, match=r"calf-strain\.yaml: empty file"):
        api.compile_rules(rules)
