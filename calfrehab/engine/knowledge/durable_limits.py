"""What durable-rules can take, checked on a compiled rule base before it
is registered: the limits of the rule engine calfrehab runs on (the
program's own limits, and where all the numbers are read, are
:mod:`calfrehab.engine.limits`).

durable-rules 2.0.28 has fixed-size tables in its C engine. Probing it (see
docs/rule-language.md, "Engine limits") found three that a rule base written
in calfrehab's rule language can reach:

- **rules per ruleset**: more than 4,096 engine rules in one ruleset and
  ``create_ruleset`` fails with error 106;
- **rules per test**: more than 257 engine rules sharing one identical fact
  test (say ``condition.kind == achilles_midportion``) and it fails with
  error 108;
- **tests per fact**: 512 distinct tests of one fact in one ruleset and
  deciding a case hangs forever; 513 and registering hangs.

An engine rule is one alternative of a rule's condition for one track (a
rule for three tracks whose condition has four alternatives is twelve). The
limits themselves live in ``calfrehab/engine/limits.toml``.
:func:`compile_within_limits` compiles a rule base and refuses one over any
of them, naming the rules that take it over, so ``rules check`` and ``next``
say why instead of hanging. (It sits above the compiler, which knows
nothing of the engine, so the two do not import each other.)
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from calfrehab.engine.errors import RuleError, RuleProblem
from calfrehab.engine.knowledge.compiler import CompiledRuleBase, compile_rulebase
from calfrehab.engine.limits import limit

if TYPE_CHECKING:
    from calfrehab.engine.knowledge.loader import RuleBase


@dataclass(frozen=True)
class EngineLimits:
    max_rules_per_ruleset: int
    max_rules_per_test: int
    max_tests_per_fact: int


def engine_limits() -> EngineLimits:
    return EngineLimits(
        max_rules_per_ruleset=limit("engine_max_rules_per_ruleset"),
        max_rules_per_test=limit("engine_max_rules_per_test"),
        max_tests_per_fact=limit("engine_max_tests_per_fact"),
    )


@dataclass
class _Usage:
    """How one ruleset uses the engine: engine rules per instance, rules
    per identical test, distinct tests per fact."""

    rules: Counter[str]  # instance key -> engine rules
    per_test: dict[str, list[str]]  # canonical test -> instance keys using it
    per_fact: dict[str, dict[str, str]]  # fact -> canonical test -> first instance


def _fact_of(body: dict[str, Any]) -> str:
    parts = body.get("$and", [body])
    for part in parts:
        name = part.get("n")
        if isinstance(name, str):
            return name
    return "?"


def _usage(compiled: CompiledRuleBase, keys: list[str]) -> _Usage:
    usage = _Usage(Counter(), defaultdict(list), defaultdict(dict))
    for key in keys:
        for d in compiled.instances[key].disjuncts:
            usage.rules[key] += 1
            for pattern in d.definition["all"]:
                for body in pattern.values():
                    test = json.dumps(body, sort_keys=True, separators=(",", ":"))
                    usage.per_test[test].append(key)
                    usage.per_fact[_fact_of(body)].setdefault(test, key)
    return usage


def _rule_ids(compiled: CompiledRuleBase, keys: list[str], most: int = 5) -> str:
    ids: list[str] = []
    for key in keys:
        rid = compiled.instances[key].rule.id
        if rid not in ids:
            ids.append(rid)
    shown = ", ".join(ids[:most])
    return shown + (f" and {len(ids) - most} more" if len(ids) > most else "")


def _problem(compiled: CompiledRuleBase, key: str, message: str) -> RuleProblem:
    inst = compiled.instances[key]
    return RuleProblem(inst.file, message, inst.line, inst.rule.id)


def check_engine_limits(
    compiled: CompiledRuleBase, limits: EngineLimits | None = None,
) -> list[RuleProblem]:
    """Every way the compiled rule base goes over what durable-rules can
    take, each naming a rule that takes it over; empty when it fits."""
    lim = limits or engine_limits()
    problems: list[RuleProblem] = []
    groups = [(f"stratum {i}", keys) for i, keys in enumerate(compiled.strata)]
    groups.append(("the prescribe phase", compiled.prescribe))
    for where, keys in groups:
        if not keys:
            continue
        usage = _usage(compiled, keys)
        # The sink and tick rules every ruleset gets (compiler.rulesets).
        total = sum(usage.rules.values()) + 2
        if total > lim.max_rules_per_ruleset:
            biggest = max(keys, key=lambda k: usage.rules[k])
            problems.append(_problem(compiled, biggest, (
                f"{where} compiles to {total} engine rules; durable-rules takes at most "
                f"{lim.max_rules_per_ruleset} in one ruleset (error 106). This rule alone "
                f"is {usage.rules[biggest]} (one per alternative of its condition and per "
                "track): split it, or simplify conditions with many `any` alternatives")))
        for test, users in usage.per_test.items():
            if len(users) > lim.max_rules_per_test:
                problems.append(_problem(compiled, users[lim.max_rules_per_test], (
                    f"{len(users)} engine rules in {where} share one fact test "
                    f"({test[:80]}); durable-rules takes at most {lim.max_rules_per_test} "
                    f"(error 108). Rules sharing it: {_rule_ids(compiled, users)}")))
        for fact, tests in usage.per_fact.items():
            if len(tests) > lim.max_tests_per_fact:
                over = list(tests.values())[lim.max_tests_per_fact]
                problems.append(_problem(compiled, over, (
                    f"{len(tests)} distinct tests of `{fact}` in {where}; durable-rules "
                    f"hangs at 512 and calfrehab takes at most {lim.max_tests_per_fact}. "
                    f"Rules testing it include: "
                    f"{_rule_ids(compiled, list(dict.fromkeys(tests.values())))}")))
    return problems


def compile_within_limits(base: RuleBase) -> CompiledRuleBase:
    """Compile a rule base (:func:`.compiler.compile_rulebase`) and refuse
    one durable-rules would refuse, or hang on: RuleError names each rule
    that takes it over a limit."""
    compiled = compile_rulebase(base)
    over = check_engine_limits(compiled)
    if over:
        raise RuleError(over)
    return compiled
