"""Compile a checked rule base into durable-rules rulesets, once.

Each rule becomes one *instance* per track it applies to (``track.`` in its
fact names filled in) or a single case-level instance. Instances are
stratified so that a rule reading a derived flag as false runs only after
every rule that could set it has had its turn (stratified negation: the
answer does not depend on firing order). Within a stratum, derived flags
chain forward inside durable-rules: an action asserts the flag and the
rules waiting on it fire.

Each ``when`` is rewritten into disjunctive normal form of positive atoms,
and each disjunct into one durable-rules rule over facts of the shape
``{"n": name, "v": value}`` (``v`` absent when the fact is missing).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from calfrehab.engine.errors import RuleError, RuleProblem
from calfrehab.engine.knowledge.catalogue import FactSpec, base_fact_specs, prescribe_fact_specs
from calfrehab.engine.knowledge.compiled import SINK, TICK, CompiledRuleBase, Disjunct, Instance
from calfrehab.engine.knowledge.conditions import (
    FLIP,
    AllOf,
    AnyOf,
    Atom,
    Cond,
    Leaf,
    NotOf,
    derived_polarities,
    polar_leaves,
)
from calfrehab.engine.knowledge.conditions import to_dnf as _to_dnf
from calfrehab.engine.knowledge.rulebase import LocatedRule, RuleBase
from calfrehab.engine.knowledge.rulelang import All, Compare, Not, Predicate

# The compiled rule base's types live in compiled.py (what a run needs whose
# compiled rule base comes from the cache); re-exported here, where they
# always were.
__all__ = ["CONDITION_KINDS", "SINK", "TICK", "CompiledRuleBase", "Disjunct", "Instance",
           "compile_rulebase"]

CONDITION_KINDS = base_fact_specs()["condition.kind"].choices or ()


class _Checker:
    def __init__(self, base: RuleBase) -> None:
        self.base = base
        self.problems: list[RuleProblem] = []
        self.base_specs = base_fact_specs()
        self.rx_specs = prescribe_fact_specs()
        self.derived: set[str] = set()

    def problem(self, lr: LocatedRule, msg: str) -> None:
        self.problems.append(RuleProblem(lr.file, msg, lr.line, lr.rule.id))

    def resolve_name(self, lr: LocatedRule, name: str, track: str | None) -> str | None:
        if name.startswith("track."):
            if track is None:
                self.problem(lr, f"`{name}` names `track.` but the rule applies to no track")
                return None
            return f"{track}.{name[len('track.'):]}"
        return name

    def spec(self, lr: LocatedRule, name: str) -> FactSpec | str | None:
        """The base fact spec, 'derived' for a flag, or None when unknown."""
        if name in self.base_specs:
            return self.base_specs[name]
        if lr.rule.phase == "prescribe" and name in self.rx_specs:
            return self.rx_specs[name]
        if name in self.derived:
            return "derived"
        return None

    def lookup(
        self, lr: LocatedRule, written: str, track: str | None
    ) -> tuple[str, FactSpec | str] | None:
        """The resolved name and spec of a fact as the rule wrote it, or
        None after reporting why it is not usable."""
        name = self.resolve_name(lr, written, track)
        if name is None:
            return None
        spec = self.spec(lr, name)
        if spec is None:
            self.problem(lr, f"unknown fact `{written}`" + _nearest(name, self._known()))
            return None
        return name, spec

    def leaf(self, lr: LocatedRule, cmp: Compare, track: str | None) -> Leaf | None:
        found = self.lookup(lr, cmp.fact, track)
        if found is None:
            return None
        name, spec = found
        value: Any = tuple(cmp.value) if isinstance(cmp.value, list) else cmp.value
        other = None
        if cmp.to_fact is not None:
            found_other = self.lookup(lr, cmp.to_fact, track)
            if found_other is None:
                return None
            other, other_spec = found_other
            if _kind(spec) != _kind(other_spec):
                self.problem(lr, f"compares `{cmp.fact}` ({_kind(spec)}) with `{cmp.to_fact}` "
                                 f"({_kind(other_spec)})")
                return None
        if spec == "derived":
            if cmp.op not in ("==", "!=") or not isinstance(value, bool) or other is not None:
                self.problem(lr, f"`{cmp.fact}` is a derived flag: compare it with == or != "
                                 "true/false")
                return None
            return Leaf(name, cmp.op, value, None, derived=True)
        assert isinstance(spec, FactSpec)
        if cmp.op in ("exists", "missing") or other is not None:
            if other is not None and cmp.op in ("in", "not_in"):
                self.problem(lr, f"`{cmp.op}` needs a list value, not a fact")
                return None
            if other is not None and spec.type in ("bool", "str") and cmp.op not in ("==", "!="):
                self.problem(lr, f"`{cmp.op}` does not apply to {spec.type} facts")
                return None
            return Leaf(name, cmp.op, None, other)
        values = value if isinstance(value, tuple) else (value,)
        for v in values:
            if not self._type_ok(spec, cmp.op, v):
                self.problem(lr, f"`{cmp.fact} {cmp.op} {v!r}`: {spec.name} is {spec.type}"
                                 + (f" (one of {', '.join(spec.choices)})"
                                    if spec.choices and len(spec.choices) < 8 else ""))
                return None
            if spec.choices and v not in spec.choices:
                what = ("exercise id" if spec.name.endswith("exercise")
                        else "condition kind" if spec.name == "condition.kind" else "value")
                self.problem(lr, f"unknown {what} `{v}` for `{cmp.fact}`"
                                 + _nearest(str(v), spec.choices))
                return None
        return Leaf(name, cmp.op, value, None)

    @staticmethod
    def _type_ok(spec: FactSpec, op: str, v: Any) -> bool:
        if spec.type == "bool":
            return op in ("==", "!=") and isinstance(v, bool)
        if spec.type == "str":
            return op in ("==", "!=", "in", "not_in") and isinstance(v, str)
        return isinstance(v, int | float) and not isinstance(v, bool)

    def _known(self) -> list[str]:
        return [*self.base_specs, *self.derived, *self.rx_specs]

    def cond(self, lr: LocatedRule, c: Predicate, track: str | None) -> Cond | None:
        if isinstance(c, Compare):
            return self.leaf(lr, c, track)
        if isinstance(c, Not):
            inner = self.cond(lr, c.not_, track)
            return None if inner is None else NotOf(inner)
        items = [self.cond(lr, x, track) for x in (c.all if isinstance(c, All) else c.any)]
        if any(i is None for i in items):
            return None
        kept = tuple(i for i in items if i is not None)
        return AllOf(kept) if isinstance(c, All) else AnyOf(kept)


def _kind(spec: FactSpec | str) -> str:
    if spec == "derived":
        return "bool"
    assert isinstance(spec, FactSpec)
    return "number" if spec.type in ("int", "number") else spec.type


def _nearest(name: str, known: Iterable[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"; did you mean `{close[0]}`?" if close else ""


def _instances_of(lr: LocatedRule) -> list[str | None]:
    return list(lr.rule.applies_to.tracks) or [None]


def compile_rulebase(base: RuleBase) -> CompiledRuleBase:
    """Check every rule against the fact catalogue and compile; raise
    RuleError with every problem found. The engine's own limits are
    checked by :func:`.durable_limits.compile_within_limits`."""
    ck = _Checker(base)
    # Pass 1: what each rule asserts, so flags may be read before or after.
    for lr in base.rules:
        rule = lr.rule
        kinds = rule.applies_to.conditions
        if kinds != "all":
            for kind in kinds:
                if kind not in CONDITION_KINDS:
                    ck.problem(lr, f"unknown condition kind `{kind}` in applies_to"
                                   + _nearest(kind, CONDITION_KINDS))
        then = rule.then
        if then.decision and not rule.applies_to.tracks:
            ck.problem(lr, "a `decision` needs applies_to.tracks")
        if then.prescribe and (not rule.applies_to.tracks or rule.phase != "prescribe"):
            ck.problem(lr, "`prescribe` needs applies_to.tracks and phase: prescribe")
        if rule.phase == "prescribe" and not then.prescribe:
            ck.problem(lr, "phase: prescribe rules may only `prescribe`")
        if then.refer and rule.applies_to.tracks:
            ck.problem(lr, "`refer` is for the whole case: leave applies_to.tracks empty")
        if then.assert_:
            for track in _instances_of(lr):
                name = ck.resolve_name(lr, then.assert_, track)
                if name is None:
                    continue
                if name in ck.base_specs or name in ck.rx_specs:
                    ck.problem(lr, f"cannot assert `{then.assert_}`: it is a base fact")
                ck.derived.add(name)

    instances: dict[str, Instance] = {}
    for lr in base.rules:
        rule = lr.rule
        for track in _instances_of(lr):
            key = rule.id if track is None else f"{rule.id}@{track}"
            when = ck.cond(lr, rule.when, track)
            if when is None:
                continue
            kinds = rule.applies_to.conditions
            if kinds != "all":
                when = AllOf((Leaf("condition.kind", "in", tuple(kinds)), when))
            asserts = ck.resolve_name(lr, rule.then.assert_, track) if rule.then.assert_ else None
            instances[key] = Instance(key, rule, lr.file, lr.line, track, when, asserts)
    _require_red_flag_referrals(base, instances, ck)
    if ck.problems:
        raise RuleError(ck.problems)

    derived: dict[str, list[str]] = {}
    for key, inst in instances.items():
        if inst.asserts:
            derived.setdefault(inst.asserts, []).append(key)

    decide = [k for k, i in instances.items() if i.phase == "decide"]
    _stratify(instances, decide, derived, ck)
    if ck.problems:
        raise RuleError(ck.problems)
    for key, inst in instances.items():
        try:
            inst.disjuncts = _disjuncts(key, inst)
        except ValueError as exc:
            ck.problems.append(RuleProblem(inst.file, str(exc), inst.line, inst.rule.id))
    if ck.problems:
        raise RuleError(ck.problems)

    depth = max((instances[k].stratum for k in decide), default=0)
    strata = [[k for k in decide if instances[k].stratum == s] for s in range(depth + 1)]
    prescribe = [k for k, i in instances.items() if i.phase == "prescribe"]
    specs = {**ck.base_specs, **ck.rx_specs}
    # Whether durable-rules can take it is checked above the compiler
    # (durable_limits.compile_within_limits), which reads what this built.
    return CompiledRuleBase(base, instances, derived, strata, prescribe, specs)


def _require_red_flag_referrals(
    base: RuleBase, instances: dict[str, Instance], ck: _Checker
) -> None:
    """Every red flag of the case format must refer: a rule base that lost
    a red-flag rule (a deleted or emptied file) is not usable."""
    referred: set[str] = set()
    for inst in instances.values():
        if not inst.rule.then.refer:
            continue
        for leaf, want in polar_leaves(inst.when):
            positive = (leaf.op == "==" and leaf.value is True) or (
                leaf.op == "!=" and leaf.value is False)
            if leaf.fact.startswith("red_flag.") and positive == want:
                referred.add(leaf.fact)
    for name in ck.base_specs:
        if name.startswith("red_flag.") and name not in referred:
            ck.problems.append(RuleProblem(
                str(base.directory.name), f"no rule refers a case with `{name}`: every red "
                "flag of the case format needs a referral rule (then: {refer: true})"))


def _stratify(
    instances: dict[str, Instance], decide: list[str], derived: dict[str, list[str]],
    ck: _Checker,
) -> None:
    limit = len(decide) + 1
    changed = True
    rounds = 0
    while changed:
        changed = False
        rounds += 1
        for key in decide:
            inst = instances[key]
            need = 0
            for flag, positive in derived_polarities(inst.when):
                for producer in derived.get(flag, []):
                    p = instances[producer]
                    if p.phase != "decide":
                        continue
                    need = max(need, p.stratum + (0 if positive else 1))
            if need != inst.stratum:
                inst.stratum = need
                changed = True
        if rounds > limit:
            cyclic = sorted({instances[k].rule.id for k in decide if instances[k].stratum >= limit})
            for key in decide:
                inst = instances[key]
                if inst.rule.id in cyclic[:5]:
                    ck.problems.append(RuleProblem(
                        inst.file, "rules depend on each other through a negated flag "
                        f"(cycle among {', '.join(cyclic[:5])})", inst.line, inst.rule.id))
                    cyclic.remove(inst.rule.id)
            return


def _pattern_tests(atom: Atom, alias_of: dict[str, str]) -> list[dict[str, Any]]:
    op, value = atom.op, atom.value
    if atom.derived:
        return [{"v": value}]
    if op == "exists":
        return [{"$ex": {"v": 1}}]
    if op == "missing":
        return [{"$nex": {"v": 1}}]
    rhs: Any = {alias_of[atom.other]: "v"} if atom.other else value
    tests: list[dict[str, Any]] = [{"$ex": {"v": 1}}]
    if op == "==":
        tests.append({"v": rhs})
    elif op == "!=":
        tests.append({"$neq": {"v": rhs}})
    elif op in ("<", "<=", ">", ">="):
        name = {"<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte"}[op]
        tests.append({name: {"v": rhs}})
    elif op == "in":
        assert isinstance(value, tuple)
        tests.append({"$or": [{"v": v} for v in value]} if len(value) > 1 else {"v": value[0]})
    elif op == "not_in":
        assert isinstance(value, tuple)
        tests += [{"$neq": {"v": v}} for v in value]
    return tests


def _disjuncts(key: str, inst: Instance) -> list[Disjunct]:
    out: list[Disjunct] = []
    for i, conj in enumerate(_to_dnf(inst.when)):
        # Facts in name order; a comparison between two facts is checked on
        # the later one, against the earlier one's bound value.
        facts = sorted({a.fact for a in conj} | {a.other for a in conj if a.other})
        order = {f: n for n, f in enumerate(facts)}
        alias_of = {f: f"f{n}" for n, f in enumerate(facts)}
        tests: dict[str, list[dict[str, Any]]] = {f: [] for f in facts}
        for atom in conj:
            if atom.other and order[atom.other] > order[atom.fact]:
                atom = Atom(atom.other, FLIP[atom.op], atom.value, atom.fact, atom.derived)
            if atom.other:
                tests[atom.other].append({"$ex": {"v": 1}})
            tests[atom.fact] += _pattern_tests(atom, alias_of)
        patterns = []
        for f in facts:
            uniq: list[dict[str, Any]] = []
            for t in tests[f]:
                if t not in uniq:
                    uniq.append(t)
            body = [{"n": f}, *uniq]
            patterns.append({alias_of[f]: {"$and": body} if len(body) > 1 else body[0]})
        definition = {"all": patterns, "pri": 1000 - inst.rule.priority}
        out.append(Disjunct(f"{key}#{i}", tuple((alias_of[f], f) for f in facts), definition))
    return out

