"""Where a missing value blocks and where it passes, rule by rule.

Derived from the compiled conditions, so what the documentation says is
what the engine does. A comparison with a missing fact is false and ``not``
is plain negation, so a missing fact *satisfies* a leaf only under a
``not`` (or with ``missing``). Whether that blocks or passes depends on what
the rule does:

- a restrictive rule (hold, regress, refer, or a flag that leads to one)
  that a missing fact can satisfy *blocks* on it (the gate stays closed),
  and one it cannot satisfy *passes* (the gate stays open);
- a permissive rule (progress, start, or a flag that leads to one) that a
  missing fact cannot satisfy *blocks* (no progression without the value),
  and one it can satisfy *passes*.

A flag's direction comes from the rules that read it: read as true by a
restrictive rule (or as false by a permissive one) it is restrictive.
Facts that always have a value (condition kind, irritability, goal, red
flags, counts, whether a track started) are left out.
"""

from __future__ import annotations

from typing import Literal

from calfrehab.engine.knowledge.compiler import CompiledRuleBase, Instance
from calfrehab.engine.knowledge.conditions import polar_leaves

Verdict = Literal["blocks", "passes", "depends"]

# Facts every valid case gives a value (defaults included).
ALWAYS = ("condition.kind", "condition.irritability", "condition.side", "patient.goal",
          "patient.age_years", "red_flags.count", "sessions.count")
_ALWAYS_SUFFIX = (".started", ".hurt_most_last_session")


def _always(fact: str) -> bool:
    return fact in ALWAYS or fact.startswith("red_flag.") or fact.endswith(_ALWAYS_SUFFIX)


def _restrictive(compiled: CompiledRuleBase) -> dict[str, bool]:
    """Each instance: does it restrict (True) or permit (False)?"""
    out: dict[str, bool] = {}
    for key, inst in compiled.instances.items():
        then = inst.rule.then
        if then.decision:
            out[key] = then.decision in ("hold", "regress")
        elif then.refer:
            out[key] = True
    flags: dict[str, bool] = {}

    def spread(needs_true: bool) -> bool:
        changed = False
        for key, inst in compiled.instances.items():
            if key not in out:
                continue
            for leaf, want in polar_leaves(inst.when):
                if not leaf.derived or leaf.fact in flags:
                    continue
                positive = (leaf.op == "==" and leaf.value is True) or (
                    leaf.op == "!=" and leaf.value is False)
                if (positive == want) == needs_true:
                    flags[leaf.fact] = out[key] if needs_true else not out[key]
                    changed = True
        for key, inst in compiled.instances.items():
            if key not in out and inst.asserts in flags:
                out[key] = flags[inst.asserts]
                changed = True
        return changed

    # A flag takes its direction from the rules that need it true; only a
    # flag no rule needs true is read from the rules that need it false.
    while spread(True) or spread(False):
        pass
    return out


def missing_effects(compiled: CompiledRuleBase) -> dict[str, dict[str, Verdict]]:
    """Rule id -> fact (as the rule's instances read it) -> blocks / passes."""
    restrictive = _restrictive(compiled)
    out: dict[str, dict[str, Verdict]] = {}
    for key, inst in compiled.instances.items():
        if inst.phase != "decide" or key not in restrictive:
            continue
        verdicts = out.setdefault(inst.rule.id, {})
        for fact, verdict in _instance_effects(inst, restrictive[key]).items():
            name = _as_written(fact, inst)
            before = verdicts.get(name)
            verdicts[name] = verdict if before in (None, verdict) else "depends"
    return out


def _as_written(fact: str, inst: Instance) -> str:
    """The fact as the rule wrote it: `track.x` where it wrote `track.`, a
    named track's fact (`bent_knee.rung`) as it is."""
    if inst.track and fact.startswith(f"{inst.track}."):
        written = f"track.{fact[len(inst.track) + 1:]}"
        if f"'{written}'" in repr(inst.rule.when):
            return written
    return fact


def _instance_effects(inst: Instance, restrictive: bool) -> dict[str, Verdict]:
    effects: dict[str, Verdict] = {}
    for leaf, want in polar_leaves(inst.when):
        if leaf.derived or _always(leaf.fact):
            continue
        for fact in (leaf.fact, leaf.to_fact):
            if fact is None or _always(fact):
                continue
            satisfies = (leaf.op == "missing" and fact == leaf.fact) == want
            verdict: Verdict = ("blocks" if satisfies else "passes") if restrictive else (
                "passes" if satisfies else "blocks")
            before = effects.get(fact)
            effects[fact] = verdict if before in (None, verdict) else "depends"
    return effects


def describe(effects: dict[str, Verdict]) -> str:
    """One sentence: which missing values block the rule's effect, which pass."""
    if not effects:
        return "every fact it reads always has a value"
    parts = []
    says = (("blocks", "blocks"), ("passes", "passes"), ("depends", "depends on the rest"))
    for word, say in says:
        facts = sorted(f for f, v in effects.items() if v == word)
        if facts:
            parts.append(f"{', '.join(f'`{f}`' for f in facts)} missing {say}")
    return "; ".join(parts)
