"""Explanations built from the same compiled rules the engine ran.

HOW: every firing in order, each condition with the fact's value, the
comparison, the threshold and where in the case file the value came from.
WHY-NOT: for each track that did not progress, the rules that would have
moved it and each condition that failed, with what it would take.

:func:`rules_that_hold` evaluates the compiled conditions in plain Python
(stratum by stratum, to a fixpoint); the rules it finds must be exactly the
ones durable-rules fired, and a property test checks that they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from calfrehab.engine.casefile.docpath import PathError, get_path
from calfrehab.engine.explanation.reasons import render_reason, week_anchors
from calfrehab.engine.inference.driver import Evaluation
from calfrehab.engine.inference.policy import decision_facts
from calfrehab.engine.knowledge.catalogue import FactValue
from calfrehab.engine.knowledge.compiler import CompiledRuleBase, Instance
from calfrehab.engine.knowledge.conditions import (
    AllOf,
    Cond,
    Leaf,
    NotOf,
    compare,
    format_value,
    holds,
    leaf_holds,
    polar_leaves,
)

PRESCRIBE_FACT_NAMES = ("decision", "next_rung", "next_exercise")


def rules_that_hold(
    compiled: CompiledRuleBase, base_values: Mapping[str, FactValue | None],
    rx_values: Mapping[str, Any] | None = None,
) -> tuple[set[str], dict[str, bool]]:
    """Instance keys whose conditions hold, and the derived flags, computed
    without durable-rules (the explainer's judgement, and the plain-Python
    floor the engine's speed is measured against)."""
    flags: dict[str, bool] = {flag: False for flag in compiled.derived}
    held: set[str] = set()
    for keys in compiled.strata:
        changed = True
        while changed:
            changed = False
            values = {**base_values, **flags}
            for key in keys:
                if key in held:
                    continue
                inst = compiled.instances[key]
                if holds(inst.when, values):
                    held.add(key)
                    if inst.asserts and not flags[inst.asserts]:
                        flags[inst.asserts] = True
                        changed = True
    if rx_values is not None:
        values = {**base_values, **flags, **rx_values}
        for key in compiled.prescribe:
            if holds(compiled.instances[key].when, values):
                held.add(key)
    return held, flags


def blocking_leaves(
    cond: Cond, values: Mapping[str, Any], want: bool = True
) -> list[tuple[Leaf, bool]]:
    """The leaves that keep ``cond`` from having the wanted truth. For an
    alternative (any) that is already satisfied, none of its leaves block."""
    if isinstance(cond, Leaf):
        return [] if leaf_holds(cond, values) == want else [(cond, want)]
    if isinstance(cond, NotOf):
        return blocking_leaves(cond.item, values, not want)
    every = isinstance(cond, AllOf) == want
    if not every and any(holds(c, values) == want for c in cond.items):
        return []
    return [pair for c in cond.items for pair in blocking_leaves(c, values, want)]


def prescribe_values(ev: Evaluation) -> dict[str, Any] | None:
    """The prescription phase's facts, or None when the case was referred
    (no prescription phase ran)."""
    return None if ev.outcome == "refer" else decision_facts(ev.tracks)


@dataclass
class ConditionView:
    fact: str
    value: Any
    op: str
    threshold: Any
    holds: bool
    paths: list[str]
    negated: bool = False
    derived_by: list[str] = field(default_factory=list)
    would_take: str | None = None
    # The case-file values a computed fact was taken from, in path order
    # (e.g. pain during 3, then 6, for the worst of the last 2 sessions).
    observed: list[Any] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out = {"fact": self.fact, "value": self.value, "op": self.op,
               "threshold": self.threshold, "holds": self.holds, "paths": self.paths,
               "negated": self.negated, "satisfied": self.holds != self.negated}
        if self.derived_by:
            out["derived_by"] = self.derived_by
        if self.would_take:
            out["would_take"] = self.would_take
        if self.observed:
            out["observed"] = self.observed
        return out

    def render(self) -> str:
        mark = "✓" if self.holds != self.negated else "✗"
        where = f"  [{', '.join(self.paths)}]" if self.paths else ""
        if self.derived_by:
            where = f"  [derived by {', '.join(self.derived_by)}]"
        shown = "missing" if self.value is None else format_value(self.value)
        if self.observed:
            shown += " (" + ", then ".join(format_value(v) for v in self.observed) + ")"
        neg = "not " if self.negated else ""
        if self.op in ("exists", "missing"):
            text = f"{mark} {neg}{self.fact} {self.op}: {shown}{where}"
        else:
            threshold = format_value(self.threshold)
            text = f"{mark} {neg}{self.fact} {self.op} {threshold}: was {shown}{where}"
        if self.would_take:
            text += f" — {self.would_take}"
        return text


class Explainer:
    def __init__(self, ev: Evaluation) -> None:
        self.ev = ev
        self.compiled = ev.compiled
        self.values: dict[str, Any] = ev.values()
        rx = prescribe_values(ev)
        if rx:
            self.values.update(rx)
        self.case_doc = ev.case.model_dump(mode="json")
        self.producers_fired: dict[str, list[str]] = {}
        for f in ev.firings:
            if f.asserted:
                self.producers_fired.setdefault(f.asserted, []).append(f.rule)

    def condition(self, leaf: Leaf, want: bool = True) -> ConditionView:
        value = self.values.get(leaf.fact)
        if leaf.derived:
            value = bool(value)
        threshold: Any = leaf.to_fact if leaf.to_fact else leaf.value
        fact = self.ev.facts.facts.get(leaf.fact)
        paths = list(fact.sources) if fact else []
        view = ConditionView(leaf.fact, value, leaf.op, threshold,
                             leaf_holds(leaf, self.values), paths, negated=not want)
        if leaf.derived:
            view.derived_by = self.producers_fired.get(leaf.fact, [])
        elif fact is None and leaf.fact.split(".")[-1] in PRESCRIBE_FACT_NAMES:
            view.derived_by = [f"the {leaf.fact.split('.')[0]} decision"]
        if leaf.to_fact:
            view.threshold = f"{leaf.to_fact} ({format_value(self.values.get(leaf.to_fact))})"
        view.observed = self._observed(paths)
        view.would_take = self._would_take(leaf, view)
        return view

    def _observed(self, paths: list[str]) -> list[Any]:
        if len(paths) < 2:
            return []
        out = []
        for path in paths:
            try:
                value = get_path(self.case_doc, path)
            except PathError:
                return []
            if isinstance(value, list):
                value = "/".join(str(v) for v in value)
            elif isinstance(value, dict) or value is None:
                return []
            out.append(value)
        return out

    def _would_take(self, leaf: Leaf, view: ConditionView) -> str | None:
        spec = self.compiled.fact_specs.get(leaf.fact)
        # A fact counted in weeks from a case date says when a gate opens.
        if spec is not None and spec.per_week_from and isinstance(leaf.value, int | float):
            anchor = self.ev.facts.anchors.get(spec.per_week_from)
            if anchor is None:
                return None
            weeks = int(leaf.value)
            if leaf.op in ("<", ">=") and view.value is not None:
                earliest = anchor + timedelta(weeks=weeks)
                if (leaf.op == ">=" and not view.holds) or (leaf.op == "<" and view.holds):
                    return f"now week {view.value}, earliest {earliest.isoformat()} (week {weeks})"
        if view.holds != view.negated or leaf.derived:
            return None
        track = leaf.fact.split(".")[0]
        if view.value is None and self.values.get(f"{track}.started") is False:
            return f"the {track} track has not started"
        if view.value is None and leaf.op != "missing" and not view.negated:
            return f"{leaf.fact} is not recorded in the case"
        # Otherwise the condition itself says what it would take.
        return None

    def rule_view(self, key: str) -> dict[str, Any]:
        inst = self.compiled.instances[key]
        rule = inst.rule
        return {
            "rule": key,
            "rule_id": rule.id,
            "title": rule.title,
            "track": inst.track,
            "holds": holds(inst.when, self.values),
            "conditions": [self.condition(leaf, want).as_dict()
                           for leaf, want in polar_leaves(inst.when)],
            "sources": [self.compiled.base.citation(s) for s in rule.sources],
            "reason": self.reason_text(inst),
        }

    def reason_text(self, inst: Instance) -> str:
        template = inst.rule.reason or inst.rule.title
        return render_reason(template, inst.track, self.values,
                             self.compiled.base.ladder.exercises,
                             week_anchors(self.compiled.fact_specs, self.ev.facts.anchors))

    def how(self) -> list[dict[str, Any]]:
        out = []
        for f in self.ev.firings:
            view = self.rule_view(f.rule)
            view.update({
                "seq": f.seq, "phase": f.phase, "stratum": f.stratum,
                "asserted": f.asserted, "effect": f.effect,
                "matched": [{"fact": b.fact, "value": b.value} for b in f.matched],
            })
            out.append(view)
        return out

    def why_not(self) -> list[dict[str, Any]]:
        """For each track that did not progress (or start): the rules that
        would have moved it, and the conditions that failed, one level into
        the flags they need."""
        out = []
        for track, result in self.ev.tracks.items():
            if result.decision in ("progress", "start"):
                continue
            movers = [
                k for k, inst in self.compiled.instances.items()
                if inst.track == track and inst.rule.then.decision in ("progress", "start")
                and (inst.rule.then.decision == "start") == (result.current is None)
            ]
            candidates = []
            for key in movers:
                view = self.rule_view(key)
                if not _applies(self.compiled.instances[key], self.values):
                    continue
                view["failed"] = self._failed(key, depth=0)
                if view["holds"]:
                    # It held, and lost the conflict: name what overruled it.
                    view["overruled_by"] = [
                        {"rule": k, "decision": result.decision,
                         "reason": self.reason_text(self.compiled.instances[k])}
                        for k in result.deciding
                    ]
                candidates.append(view)
            out.append({"track": track, "decision": result.decision, "rules": candidates})
        return out

    def _failed(self, key: str, depth: int) -> list[dict[str, Any]]:
        inst = self.compiled.instances[key]
        failed = []
        for leaf, want in blocking_leaves(inst.when, self.values):
            view = self.condition(leaf, want)
            entry = view.as_dict()
            entry["text"] = view.render()
            if leaf.derived and depth < 4:
                wanted = (bool(leaf.value) if leaf.op == "==" else not bool(leaf.value)) == want
                if wanted:
                    # A flag that should be true: why did its rules not fire?
                    entry["because"] = [
                        {"rule": p, "title": self.compiled.instances[p].rule.title,
                         "failed": self._failed(p, depth + 1)}
                        for p in self.compiled.derived.get(leaf.fact, [])
                        if _applies(self.compiled.instances[p], self.values)
                    ]
                else:
                    # A flag that should be false was set: name who set it.
                    entry["because"] = [
                        {"rule": p, "title": self.compiled.instances[p].rule.title,
                         "reason": self.reason_text(self.compiled.instances[p]),
                         "conditions": [self.condition(x, w).render()
                                        for x, w in polar_leaves(self.compiled.instances[p].when)]}
                        for p in self.producers_fired.get(leaf.fact, [])
                    ]
            failed.append(entry)
        return failed

    def sources(self) -> list[dict[str, str]]:
        keys: list[str] = []
        for f in self.ev.firings:
            for s in self.compiled.instances[f.rule].rule.sources:
                if s not in keys:
                    keys.append(s)
        return [{"key": k, "citation": self.compiled.base.citation(k)} for k in keys]


def _applies(inst: Instance, values: Mapping[str, Any]) -> bool:
    """False when the rule is for another condition kind (not worth listing)."""
    rule_kinds = inst.rule.applies_to.conditions
    return rule_kinds == "all" or compare("in", values.get("condition.kind"), tuple(rule_kinds))
