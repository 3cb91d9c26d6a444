"""What a ruleset's patterns can match, kept with the compiled rule base
(CompiledRuleBase.acceptance_sources, stored in the compiled-rules cache) so
that a reasoner built from the cache does not read the patterns again: the
stored expressions are what reading the rulesets' definitions afresh gives,
on the shipped rules and on a rule base with every kind of test. conftest
points XDG_CACHE_HOME at a temp directory."""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

from calfrehab.engine import pipeline
from calfrehab.engine.inference.driver import Reasoner
from calfrehab.engine.inference.matchable import acceptance, compiled_acceptance
from calfrehab.engine.knowledge import cache
from calfrehab.engine.knowledge.compiler import SINK, TICK, CompiledRuleBase
from calfrehab.engine.knowledge.loader import default_rules_dir, rulebase_sha256
from calfrehab.engine.knowledge.matchsource import acceptance_sources

# Every kind of test the compiler writes: order, equality and inequality,
# in and not_in, exists and missing, a comparison with another fact, a
# negation (which the compiler spells out as alternatives with `missing`),
# and a derived flag read both ways.
_ODD_RULES = """\
rules:
  - id: test-odd-flag
    title: A flag from a comparison between facts
    rationale: Test only.
    sources: [calfrehab_basis]
    applies_to: {tracks: [straight_knee, bent_knee], conditions: all}
    priority: 10
    when:
      all:
        - {fact: assessment.heel_raise_involved, op: ">", to_fact: assessment.heel_raise_uninvolved}
        - not: {fact: assessment.visa_a, op: "<=", value: 40}
        - {fact: patient.age_years, op: not_in, value: [17, 99]}
    then: {assert: track.test_odd}
  - id: test-odd-reader
    title: A flag read both ways
    rationale: Test only.
    sources: [calfrehab_basis]
    applies_to: {tracks: [straight_knee], conditions: [achilles_midportion, calf_strain]}
    priority: 10
    when:
      any:
        - all:
            - {fact: track.test_odd, op: "==", value: true}
            - {fact: assessment.hop_pain, op: missing}
        - all:
            - {fact: track.test_odd, op: "!=", value: true}
            - {fact: injury.weeks_since, op: exists}
            - {fact: patient.body_mass_kg, op: ">=", value: 120.5}
            - {fact: sessions.count, op: "!=", value: 3}
    then: {assert: track.test_odd_read}
"""


def _rules(tmp_path: Path, extra: str | None = None) -> Path:
    directory = tmp_path / "rules"
    shutil.copytree(default_rules_dir(), directory, ignore=shutil.ignore_patterns("__*"))
    if extra is not None:
        (directory / "zz-test-odd.yaml").write_text(extra, encoding="utf-8")
    return directory.resolve()


def _definitions(compiled: CompiledRuleBase) -> dict[str, list[Mapping[str, Any]]]:
    """Per ruleset suffix, the definitions the driver registers (runs
    included), the sink and the tick aside: what the driver read before
    the expressions were stored."""
    return {
        name.rpartition("_")[2]: [body for rule, body in rules.items()
                                   if rule not in (SINK, TICK)]
        for name, rules in compiled.rulesets("p").items()
    }


def _described(r: Reasoner) -> list[list[tuple[str, bool, bool, object]]]:
    """A reasoner's plans, each predicate by its code (code objects compare
    by content)."""
    return [[(n, d, c, None if a is None else a.__code__) for n, d, c, a in plan]
            for plan in [*r._reads, r._rx_plan]]


def _sources(plan: Iterable[tuple[str, Any]]) -> dict[str, str]:
    return {name: accept.source for name, accept in plan}


@pytest.mark.parametrize("extra", [None, _ODD_RULES], ids=["shipped", "odd"])
def test_the_stored_expressions_are_what_the_definitions_give(
        tmp_path: Path, extra: str | None) -> None:
    directory = _rules(tmp_path, extra)
    compiled = pipeline.compiled(directory)
    if extra is not None:
        assert "test-odd-reader@straight_knee" in compiled.instances
    definitions = _definitions(compiled)
    stored = compiled.acceptance_sources
    assert list(stored) == list(definitions) == list(compiled.definition_texts)
    for suffix, defs in definitions.items():
        fresh = acceptance(defs)
        assert fresh is not None
        assert stored[suffix] == acceptance_sources(defs) == _sources(fresh.items())
        # Compiled, they accept what the fresh ones accept.
        kept = compiled_acceptance(stored[suffix])
        assert kept is not None
        assert _sources(kept.items()) == _sources(fresh.items())
        for name, accept in kept.items():
            for value in (None, True, False, 0, 3, 40, 41, 120.5, 17, "achilles_midportion"):
                assert accept.accepts(value) == fresh[name].accepts(value), (name, value)
    if extra is not None:
        # The odd rules' tests are all there: a flag read both ways, a
        # comparison with another fact (any value present), a negated order
        # (its complement or a missing value), not_in.
        flat = {name: source for by_fact in stored.values() if by_fact
                for name, source in by_fact.items()}
        assert flat["straight_knee.test_odd"] == "(v == True) or (v == False)"
        assert "v is not None" in flat["assessment.heel_raise_uninvolved"]
        assert "v is None" in flat["assessment.visa_a"]
        assert "v > 40" in flat["assessment.visa_a"]
        assert "v != 17" in flat["patient.age_years"]


def test_the_cache_keeps_them_and_a_hit_reads_none_of_the_patterns(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = _rules(tmp_path)
    first = pipeline.compiled(directory)
    stored = first.acceptance_sources

    def never(*_: object) -> None:
        raise AssertionError("the patterns were read again")

    hit = cache.compiled_cached(directory, rulebase_sha256(directory), never)  # type: ignore[arg-type]
    assert vars(hit)["acceptance_sources"] == stored  # read, not derived again
    # A reasoner built from the hit reads no definition.
    import calfrehab.engine.inference.matchable as matchable
    monkeypatch.setattr(matchable, "acceptance_sources", never)
    built = Reasoner(hit)
    fresh = Reasoner(first)
    assert _described(built) == _described(fresh)
