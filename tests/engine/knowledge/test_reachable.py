"""`rules check` refuses a safety rule no valid case can make fire (issue 27:
a referral with an extra ``age_years > 150`` passed; the case format allows
12 to 100)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers import REPO

from calfrehab.engine import api
from calfrehab.engine.knowledge.reachable import case_field_ranges, unreachable_safety_rules

RUPTURE_REFERRAL = '''        - {fact: condition.kind, op: "!=", value: achilles_rupture}
    then: {refer: true}'''


def rules_with(tmp_path: Path, extra: str) -> Path:
    rules = tmp_path / "rules"
    shutil.copytree(REPO / "rules", rules)
    text = (rules / "red-flags.yaml").read_text(encoding="utf-8")
    assert RUPTURE_REFERRAL in text
    text = text.replace(RUPTURE_REFERRAL, RUPTURE_REFERRAL.replace(
        "    then:", f"{extra}\n    then:"), 1)
    (rules / "red-flags.yaml").write_text(text, encoding="utf-8")
    return rules


def test_the_ranges_come_from_the_case_format() -> None:
    ranges = case_field_ranges()
    assert ranges["patient.age_years"] == (12, 100)
    assert ranges["patient.body_mass_kg"] == (25, 250)


def test_the_shipped_rules_have_no_unreachable_safety_rule() -> None:
    assert unreachable_safety_rules(api.compile_rules()) == []


@pytest.mark.parametrize("test", [
    '        - {fact: patient.age_years, op: ">", value: 150}',
    '        - {fact: patient.age_years, op: "<", value: 12}',
    '        - {fact: patient.body_mass_kg, op: "==", value: 300}',
])
def test_a_referral_that_can_never_fire_is_refused_naming_it(tmp_path: Path, test: str) -> None:
    with pytest.raises(api.RuleError) as caught:
        api.check_rules(rules_with(tmp_path, test))
    (problem,) = caught.value.problems
    assert problem.rule_id == "refer-suspected-rupture" and problem.file == "red-flags.yaml"
    assert "this safety rule can never fire on a valid case" in problem.message
    assert "the case format allows patient." in problem.message


def test_one_alternative_that_can_hold_is_enough(tmp_path: Path) -> None:
    either = ('        - any:\n'
              '            - {fact: patient.age_years, op: ">", value: 150}\n'
              '            - {fact: patient.age_years, op: ">=", value: 100}')
    compiled = api.compile_rules(rules_with(tmp_path, either))
    assert unreachable_safety_rules(compiled) == []
