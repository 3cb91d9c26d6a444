"""One source for every number: parameters in conditions, titles, reasons
and cues rendered from them, stray numbers refused, missing values read
"not measured", and gates that say when they open."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import EXAMPLES, rules_dir_with

from calfrehab.engine import api
from calfrehab.engine.errors import RuleError
from calfrehab.engine.explanation.reasons import render_reason
from calfrehab.engine.knowledge.loader import default_rules_dir, load_rulebase

RULE = """rules:
  - id: test-rule
    title: {title}
    rationale: A rule for testing the rule text checker.
    sources: [silbernagel2007]
    applies_to: {{tracks: [straight_knee]}}
    when: {when}
    then: {{decision: hold}}
    reason: "{reason}"
"""


def _rules(tmp_path: Path, title: str, when: str, reason: str) -> Path:
    return rules_dir_with(tmp_path, {"test.yaml": RULE.format(title=title, when=when,
                                                               reason=reason)})


def _problems(path: Path) -> list[str]:
    with pytest.raises(RuleError) as info:
        load_rulebase(path)
    return [p.message for p in info.value.problems]


def test_a_reason_stating_a_number_the_condition_does_not_use_is_refused(tmp_path: Path) -> None:
    rules = _rules(tmp_path, "Hold at pain 5",
                   '{fact: track.pain_during_last, op: ">", value: 4}',
                   "Hold: pain during above 3 in the last 2 sessions")
    problems = _problems(rules)
    assert any(p.startswith("title states 5,") for p in problems), problems
    assert any(p.startswith("reason states 3, 2,") for p in problems), problems


def test_numbers_render_from_the_condition_and_the_parameters(tmp_path: Path) -> None:
    rules = _rules(tmp_path, "Hold above {=track.pain_during_last}/10",
                   '{fact: track.pain_during_last, op: ">", value: {param: pain_during_margin}}',
                   "Hold: pain during {track.pain_during_last}/10, above "
                   "{=track.pain_during_last}, in the last {param.window_sessions} sessions")
    base = load_rulebase(rules)
    rule = next(lr.rule for lr in base.rules if lr.rule.id == "test-rule")
    margin = base.manifest.parameters["pain_during_margin"]
    assert rule.title == f"Hold above {margin}/10"
    assert rule.reason == ("Hold: pain during {track.pain_during_last}/10, above "
                           f"{margin}, in the last {base.manifest.settings.window_sessions} "
                           "sessions")


def test_unknown_parameters_and_ambiguous_thresholds_are_named(tmp_path: Path) -> None:
    rules = _rules(tmp_path, "Hold",
                   '{any: [{fact: track.pain_during_last, op: ">", value: {param: nope}}, '
                   '{fact: track.pain_during_last, op: ">", value: 7}]}',
                   "Hold above {=track.pain_during_last}")
    problems = _problems(rules)
    assert any("unknown parameter `nope`" in p for p in problems), problems
    assert any("compares `track.pain_during_last` with" in p for p in problems), problems


def test_a_clinic_window_of_3_sessions_is_what_the_reasons_say(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(default_rules_dir(), rules, ignore=shutil.ignore_patterns("*.py"))
    manifest = rules / "rulebase.yaml"
    text = manifest.read_text(encoding="utf-8")
    manifest.write_text(text.replace("window_sessions: 2\n", "window_sessions: 3\n"),
                        encoding="utf-8")
    base = load_rulebase(rules)
    texts = {lr.rule.id: f"{lr.rule.title} | {lr.rule.reason}" for lr in base.rules}
    assert "the last 3 sessions" in texts["dose-completed"]
    assert "last 2 sessions" not in " ".join(texts.values())
    doc = json.loads((EXAMPLES / "plantar-first-visit-no-sessions.json").read_text())
    decided = api.decide_document(doc, api.prepare(rules))
    said = " ".join(r.text for r in decided.decision.reasons)
    assert "last 2 sessions" not in said


def test_a_missing_value_reads_not_measured_with_its_unit() -> None:
    text = render_reason("LSI {assessment.heel_raise_lsi}% (bar 90%), pain {p}/10",
                         None, {"assessment.heel_raise_lsi": None, "p": 3})
    assert text == "LSI not measured (bar 90%), pain 3/10"
    assert "unknown" not in text


def test_a_gate_says_when_it_opens_as_a_date_and_a_week(reasoner: object) -> None:
    doc = json.loads((EXAMPLES / "rupture-operative-gate-counted-from-surgery.json").read_text())
    decided = api.decide_document(doc, api.prepare())
    gate = next(r.text for r in decided.decision.reasons
                if r.rule == "rupture-gate-single-leg@straight_knee")
    # Surgery 2026-07-31 + 10 weeks.
    assert "they open on 2026-10-09 (week 10)" in gate
