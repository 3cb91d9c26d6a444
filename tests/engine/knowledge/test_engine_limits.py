"""The engine's measured limits (docs/rule-language.md, Engine limits) and
the registration check `rules check` runs in a child process."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import probe_rules, rules_dir_with

from calfrehab.engine import pipeline
from calfrehab.engine.errors import RuleError
from calfrehab.engine.knowledge.durable_limits import (
    EngineLimits,
    check_engine_limits,
    engine_limits,
)
from calfrehab.engine.knowledge.loader import default_rules_dir
from calfrehab.engine.ruletest.registration import check_registration


def test_the_shipped_limits_are_the_measured_ones() -> None:
    # Below the engine's measured failure points (4,097 / 258 / 512).
    lim = engine_limits()
    assert lim.max_rules_per_ruleset <= 4096
    assert lim.max_rules_per_test <= 257
    assert lim.max_tests_per_fact < 512


def test_the_shipped_rules_fit_and_register() -> None:
    compiled = pipeline.compile_rules(None)
    assert check_engine_limits(compiled) == []
    report = check_registration(default_rules_dir(), timeout_s=120)
    assert report.ok, [p.render() for p in report.problems]


def test_each_limit_names_a_rule_over_it(tmp_path: Path) -> None:
    rules = rules_dir_with(tmp_path, {"g.yaml": probe_rules(12, distinct=False)},
                           keep_shipped_rules=True)
    compiled = pipeline.compile_rules(rules)
    tight = EngineLimits(max_rules_per_ruleset=10_000, max_rules_per_test=10,
                         max_tests_per_fact=10_000)
    # The shipped rules share tests too (condition.kind, say): find the probes'.
    (problem,) = [p for p in check_engine_limits(compiled, tight)
                  if "patient.age_years" in p.message]
    assert problem.rule_id == "probe-10" and problem.file == "g.yaml"
    assert "12 engine rules in stratum 0 share one fact test" in problem.message
    by_count = EngineLimits(max_rules_per_ruleset=20, max_rules_per_test=10_000,
                            max_tests_per_fact=10_000)
    assert any("durable-rules takes at most 20 in one ruleset (error 106)" in p.message
               for p in check_engine_limits(compiled, by_count))


def test_over_a_limit_the_compiler_refuses(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    rules = rules_dir_with(tmp_path, {"g.yaml": probe_rules(30, distinct=True)},
                           keep_shipped_rules=True)
    pipeline.compile_rules(rules)  # within the shipped limits
    monkeypatch.setenv("CALFREHAB_ENGINE_MAX_TESTS_PER_FACT", "25")
    with pytest.raises(RuleError) as exc:
        pipeline.compile_rules(rules)
    (problem,) = exc.value.problems
    assert problem.rule_id == "probe-25"
    assert "30 distinct tests of `patient.age_years` in stratum 0" in problem.message
