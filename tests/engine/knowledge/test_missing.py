"""Where a missing value blocks and where it passes (knowledge/missing.py),
as the generated clinical basis says it for every rule."""

from __future__ import annotations

import pytest

from calfrehab.engine import api
from calfrehab.engine.knowledge.missing import describe, missing_effects

EFFECTS = missing_effects(api.compile_rules())


@pytest.mark.parametrize(("rule", "fact", "verdict"), [
    # A gate written with `not` stays closed on a value never measured.
    ("rupture-gate-running", "assessment.heel_raise_lsi", "blocks"),
    ("gate-return-to-running-criteria", "assessment.hop_pain", "blocks"),
    ("gate-return-to-running-criteria-both-sides", "assessment.heel_raise_involved",
     "blocks"),
    ("gate-next-morning-unknown", "session.pain_next_morning_last", "blocks"),
    # A progression needs its value.
    ("dose-completed", "track.dose_completed_window", "blocks"),
    ("start-pogo-hops", "assessment.heel_raise_involved", "blocks"),
    # ... and a clinic's soleus gate does not guess a body mass: a ratio not
    # measured does not hold hopping (the soleus-goal rule says it is missing).
    ("gate-soleus-goal", "bent_knee.calf_load_bw_ratio", "passes"),
    # A regression or referral does not fire on a value never recorded.
    ("regress-running-criteria-not-met", "assessment.heel_raise_lsi", "passes"),
    ("refer-pain-at-rest", "assessment.pain_at_rest", "passes"),
    ("regress-high-irritability-painful", "track.pain_during_last", "passes"),
    # A flare flag is restrictive: no flare from a morning not recorded.
    ("session-flare-next-morning", "session.pain_next_morning_last", "passes"),
    ("pain-during-over-limit", "track.pain_during_last", "passes"),
])
def test_missing_values_block_or_pass_as_the_rule_reads(rule: str, fact: str,
                                                       verdict: str) -> None:
    assert EFFECTS[rule][fact] == verdict


def test_facts_that_always_have_a_value_are_not_listed() -> None:
    assert describe(EFFECTS["gate-high-irritability"]) == "every fact it reads always has a value"
    assert "condition.kind" not in EFFECTS["start-bent-knee-soleus-strain"]


def test_every_decide_rule_says_it() -> None:
    compiled = api.compile_rules()
    decide = {lr.rule.id for lr in compiled.base.rules if lr.rule.phase == "decide"}
    assert decide == set(EFFECTS)
