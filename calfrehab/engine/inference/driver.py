"""Evaluate one case on a compiled rule base, inside durable-rules.

Prepare once (:class:`Reasoner` registers the compiled rulesets with the
process's host), then evaluate many. Each ruleset is sent only the facts
some pattern of it can match (:mod:`calfrehab.engine.inference.matchable`);
the evaluation keeps every fact, for the explanation.

On a durable-rules built with calfrehab's fix (``scripts/dev.py`` builds
it; :func:`~calfrehab.engine.inference.durable_host.retract_safe`), each
ruleset keeps ONE durable state for the process, reused by every case: a
case asserts its facts, runs, reads its firings and retracts what it
asserted, so memory stays flat over any number of cases and no case pays
for creating and deleting a state (durable allocates and clears every join
node of the ruleset for a new one). The evaluation of a case holds the
host's lock throughout, so two cases never share the state at once; a case
that fails deletes the state, which the next case creates again, empty.
With the matchable facts it takes durable's C time to about 0.4× the
previous driver's (docs/performance-engine.md).

On durable-rules as published (2.0.28), retracting from a state whose rules
have fired scans past a frame and writes into whatever follows it: the
segmentation faults and corrupted heaps a reused state met after thousands
of cases (``scripts/durable_patch.py``). There each case runs under its own
state id instead, deleted when the case is done, which never retracts.
``reuse_states`` forces either way (True on the plain build is for
experiments only).

``Reasoner(compiled, reuse_states=False, matchable_only=False)`` is the
previous driver (a new state per case, deleted after it; every fact a
ruleset reads sent), kept as the oracle the benchmarks and tests compare
the current one against. Every firing is recorded in order with the facts
it matched.

The driver only runs rulesets and records firings (and the votes they
cast); what the votes decide is the policy's
(:mod:`calfrehab.engine.inference.policy`).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from calfrehab.engine.casefile.model import Case
from calfrehab.engine.errors import EngineError
from calfrehab.engine.inference import policy
from calfrehab.engine.inference.durable_host import (
    AssertFact,
    Fire,
    RuleHost,
    batch_head,
    fact_tail,
    get_host,
    retract_safe,
)
from calfrehab.engine.inference.facts import FactSet, compute_facts
from calfrehab.engine.inference.firing import Binding, Firing
from calfrehab.engine.inference.matchable import compiled_acceptance
from calfrehab.engine.inference.policy import Modifier, TrackResult, Vote
from calfrehab.engine.inference.selection import Read, Selector, Texts, selector
from calfrehab.engine.knowledge.catalogue import FactSettings, FactValue
from calfrehab.engine.knowledge.compiled import SINK, TICK, CompiledRuleBase, Instance
from calfrehab.engine.vocabulary import TRACKS


class _Static(NamedTuple):
    """What one rule instance is, read from the compiled rule base once at
    prepare (Reasoner._static): named, and a tuple so the hot path can
    still unpack it at a tuple's speed."""

    rule_id: str
    track: str | None
    phase: str
    stratum: int
    asserts: str | None  # the flag its firing asserts
    effect: str | None  # a decision, "refer", "prescribe" or None
    payload: Vote | Modifier | None  # the vote or modifier it casts


class _Target(NamedTuple):
    """What a firing of one durable rule does (Reasoner._dispatch_table)."""

    key: str  # the rule instance's key
    aliases: tuple[tuple[str, str], ...]  # of the alternative that fired
    track: str | None
    asserts: str | None
    effect: str | None
    payload: Vote | Modifier | None


# One firing as the driver records it while the rules run: the rule
# instance's key, the aliases of the alternative that fired and what
# durable-rules matched (alias -> fact; shared with the parsed-message cache,
# so only ever read). The firing records are built from these only when
# asked for (:attr:`Evaluation.firings`): most of a firing's record (its
# bindings with their case-file paths) is for the decision document, not
# for the decision.
Hit = tuple[str, tuple[tuple[str, str], ...], Mapping[str, Any]]


@dataclass
class Evaluation:
    """One case evaluated: its facts and derived flags, every firing (as
    hits), the outcome and each track's result, on the compiled rule base
    it ran on."""

    case: Case
    facts: FactSet
    flags: dict[str, bool]
    hits: list[Hit]
    outcome: str
    tracks: dict[str, TrackResult]
    refer_rules: list[str]
    compiled: CompiledRuleBase
    # Per rule instance: (rule id, track, phase, stratum, flag asserted,
    # effect, ...), the reasoner's table (see _static).
    statics: Mapping[str, _Static] = field(repr=False, compare=False)
    _firings: list[Firing] | None = field(default=None, init=False, repr=False, compare=False)

    def values(self) -> dict[str, FactValue | None]:
        out: dict[str, FactValue | None] = dict(self.facts.values())
        out.update(self.flags)
        return out

    @property
    def firings(self) -> list[Firing]:
        """Every firing in order, with the facts it matched (their values
        and case-file paths): built on first use, from the hits, and kept
        (two threads racing on the first use build equal lists)."""
        if self._firings is None:
            self._firings = self._records()
        return self._firings

    def _records(self) -> list[Firing]:
        paths = self.facts.paths
        statics = self.statics
        out: list[Firing] = []
        for seq, (key, aliases, matched) in enumerate(self.hits, 1):
            rule = statics[key]
            bound = [
                Binding(fact, matched.get(alias, {}).get("v"), list(paths(fact) or ()))
                for alias, fact in aliases
            ]
            out.append(Firing(seq, key, rule.rule_id, rule.track, rule.phase, rule.stratum,
                              bound, rule.asserts, rule.effect))
        return out


class _Context:
    """What the rules of one case have done so far (a plain slotted class:
    one a case)."""

    __slots__ = ("error", "fired", "flags_true", "head", "hits", "modifiers", "refers", "sid",
                 "stratum", "votes")

    def __init__(self, sid: str, head: str) -> None:
        self.flags_true: set[str] = set()
        self.fired: set[str] = set()
        self.hits: list[Hit] = []
        self.votes: dict[str, list[Vote]] = {}
        self.refers: list[str] = []
        self.modifiers: dict[str, list[Modifier]] = {}
        self.stratum = 0
        self.error: tuple[str, BaseException] | None = None
        self.sid = sid
        # The start of each fact's text in a batch for this sid.
        self.head = head


def _static(inst: Instance) -> _Static:
    # Its rule's view (knowledge/views.py): the rule itself is not loaded.
    then = inst.view
    effect: str | None = None
    payload: Vote | Modifier | None = None
    if then.decision:
        effect, payload = then.decision, Vote(then.decision, inst.key, then.rung)
    elif then.refer:
        effect = "refer"
    elif then.prescribe:
        effect = "prescribe"
        payload = Modifier(inst.key, then.priority, then.prescribe)
    return _Static(then.id, inst.track, inst.phase, inst.stratum, inst.asserts, effect,
                   payload)


class Reasoner:
    """A compiled rule base registered on the process's durable-rules host."""

    _sids = itertools.count(1)
    _instances = itertools.count(1)

    def __init__(
        self, compiled: CompiledRuleBase, host: RuleHost | None = None, *,
        reuse_states: bool | None = None, matchable_only: bool = True,
    ) -> None:
        self.compiled = compiled
        self.host = host or get_host()
        # None: reuse states where durable-rules can retract safely.
        self.reuse_states = retract_safe() if reuse_states is None else reuse_states
        self.matchable_only = matchable_only
        # Ruleset and action names are global to the host: each engine gets
        # its own, so two engines on the same rules never share actions.
        self.prefix = f"crb{next(self._instances)}_{compiled.sha256[:12]}"
        self.settings = FactSettings(
            window_sessions=compiled.manifest_view.window_sessions,
            stiffness_window_days=compiled.manifest_view.stiffness_window_days,
            seated_exercises=frozenset(compiled.ladder.load.seated_exercises),
        )
        # The one state id of this engine's rulesets (reused states): the
        # rulesets are this engine's own, so one name serves.
        self.sid = "r"
        rulesets = compiled.rulesets(self.prefix)
        self.ruleset_names = list(rulesets)
        # Facts each stratum reads, decided once here, not per case, with
        # what of each its patterns can match.
        self._reads: list[list[Read]] = []
        for k, keys in enumerate(compiled.strata):
            self._reads.append(self._plan(
                compiled.facts_read(keys), k, f"s{k}"))
        # The prescribe phase runs after every decision: all its facts are
        # sent as values (flags included, settled by then).
        self._rx_plan = [
            (n, False, False, accept)
            for n, _, _, accept in self._plan(
                compiled.facts_read(compiled.prescribe), len(compiled.strata), "rx")
        ]
        # What a firing of each rule instance records and casts, decided
        # once here: (rule id, track, phase, stratum, flag asserted, effect,
        # the vote or modifier it casts).
        self._static = {key: _static(inst) for key, inst in compiled.instances.items()}
        self._dispatch = self._dispatch_table(rulesets)
        self._tick = fact_tail(TICK, None)
        self._head = batch_head(self.sid)
        # What the kept texts start with: the whole head on a reused state.
        self._kept_head = self._head if self.reuse_states else ""
        # Per ruleset, the batch text of each (fact, value) seen without
        # its sid, None if not sent, and the function that writes its facts.
        self._texts: dict[str, Texts] = {name: {} for name in self.ruleset_names}
        self._strata = [f"{self.prefix}_s{k}" for k in range(len(self._reads))]
        self._rx = f"{self.prefix}_rx"
        self._selectors: dict[str, Selector] = {
            name: selector(plan, self._kept_head, self._texts[name])
            for name, plan in [*zip(self._strata, self._reads, strict=True),
                               (self._rx, self._rx_plan)]
        }
        self._flags_false = dict.fromkeys(compiled.derived, False)
        # The names of the facts the policy reads off a case.
        self._scheme_weeks = [(t, f"{t}.scheme_week") for t in TRACKS]
        self.host.register(rulesets, silent=(SINK, TICK), texts={
            f"{self.prefix}_{suffix}": text
            for suffix, text in compiled.definition_texts.items()})

    def _dispatch_table(
        self, rulesets: Mapping[str, Mapping[str, Any]]
    ) -> dict[str, _Target]:
        """durable rule name -> what its firing does: (instance key,
        aliases to read its match by, track, flag asserted, effect, the
        vote or modifier cast), all read once here.

        Each alternative (disjunct) of a rule is its own durable rule with
        its own aliases, so a firing is read by the aliases of the
        alternative that fired. The sink and tick rules are not in it: they
        do nothing.
        """
        aliases: dict[str, _Target] = {}
        for inst in self.compiled.instances.values():
            rule = self._static[inst.key]
            for d in inst.disjuncts:
                aliases[d.key] = _Target(inst.key, d.aliases, rule.track, rule.asserts,
                                         rule.effect, rule.payload)
        return {
            dkey: aliases[dkey]
            for rules in rulesets.values()
            for dkey in rules
            if dkey not in (SINK, TICK)
        }

    def _plan(self, names: set[str], stratum: int, suffix: str) -> list[Read]:
        """(fact, is derived flag, flag complete before this stratum, what
        the ruleset's patterns can match of it; None: send it whatever
        its value).

        What the patterns can match is read off them once per rule base
        (CompiledRuleBase.acceptance_sources, kept in the compiled-rules
        cache); here it is only compiled."""
        accepts = compiled_acceptance(self.compiled.acceptance_sources[suffix]) \
            if self.matchable_only else None
        plan: list[Read] = []
        for name in sorted(names):
            # A fact no pattern of this ruleset names: nothing can match it.
            accept = (accepts[name].accepts if name in accepts else _never) \
                if accepts is not None else None
            producers = self.compiled.derived.get(name)
            if producers is None:
                plan.append((name, False, False, accept))
            else:
                complete = all(
                    self.compiled.instances[p].stratum < stratum
                    or self.compiled.instances[p].phase != "decide"
                    for p in producers
                )
                plan.append((name, True, complete, accept))
        return plan

    def _fire(self, ctx: _Context) -> Fire:
        dispatch = self._dispatch
        on_fire = self._on_fire

        def fire(rule: str, matched: Mapping[str, Any], assert_fact: AssertFact) -> None:
            target = dispatch.get(rule)
            if target is None:
                return  # the sink or the tick
            try:
                on_fire(ctx, target, matched, assert_fact)
            except BaseException as exc:
                # Keep the rule and the exception for the caller.
                if ctx.error is None:
                    ctx.error = (target.key, exc)
                raise

        return fire

    def _on_fire(
        self, ctx: _Context, target: _Target, matched: Mapping[str, Any],
        assert_fact: AssertFact,
    ) -> None:
        key, aliases, track, asserts, effect, payload = target
        fired = ctx.fired
        if key in fired:
            return  # another alternative of the same rule already fired
        fired.add(key)
        if effect is None:
            pass
        elif effect == "refer":
            ctx.refers.append(key)
        elif effect == "prescribe":
            assert track is not None and isinstance(payload, Modifier)
            ctx.modifiers.setdefault(track, []).append(payload)
        else:
            assert track is not None and isinstance(payload, Vote)
            ctx.votes.setdefault(track, []).append(payload)
        ctx.hits.append((key, aliases, matched))
        if asserts and asserts not in ctx.flags_true:
            ctx.flags_true.add(asserts)
            # Forward chaining: rules of this stratum waiting on the flag fire.
            assert_fact(asserts, True)

    def _select(self, ruleset: str, values: Mapping[str, Any], ctx: _Context) -> str:
        """One ruleset's facts as the JSON text durable-rules reads ("[]":
        none), on either kind of state (:mod:`~calfrehab.engine.inference.
        selection` says which facts); on a state per case, the tick first.
        A reused state's sid never changes, so its texts are kept whole; on
        a state per case the sid goes in as the separator."""
        out = self._selectors[ruleset](values, ctx.flags_true)
        if self.reuse_states:
            return "[" + ",".join(out) + "]"
        # The tick makes one action run per state, so that deleting it is
        # safe (see compiler.SINK/TICK); a reused state is not deleted.
        out.insert(0, self._tick)
        head = ctx.head
        return "[" + head + ("," + head).join(out) + "]"

    def evaluate(self, case: Case) -> Evaluation:
        facts = compute_facts(case, self.settings)
        # One case at a time on the engine's states (and on the host).
        with self.host.lock:
            return self._evaluate(case, facts)

    def _evaluate(self, case: Case, facts: FactSet) -> Evaluation:
        # Read only: the FactSet's own dict, not a copy.
        values = facts.view()
        sid = self.sid if self.reuse_states else f"c{next(self._sids)}"
        ctx = _Context(sid=sid, head=self._head if self.reuse_states
                       else batch_head(sid))
        fire = self._fire(ctx)
        for k, name in enumerate(self._strata):
            ctx.stratum = k
            self._run(name, values, fire, ctx)
        # Every derived flag, in the rule base's order: false unless asserted.
        flags = self._flags_false.copy()
        for flag in ctx.flags_true:
            if flag in flags:
                flags[flag] = True
        outcome, tracks = policy.resolve(
            ctx.votes, ctx.refers,
            program={t: case.program.on(t) for t in TRACKS},
            condition_kind=case.condition.kind, goal=case.patient.goal,
            ladder=self.compiled.ladder,
            scheme_weeks={t: _int(values.get(n)) for t, n in self._scheme_weeks},
            body_mass_kg=case.patient.body_mass_kg,
        )
        if outcome != "refer" and self.compiled.prescribe:
            # What the prescribe rules read: the decisions, else the flags,
            # else the base facts.
            decided = policy.decision_facts(tracks)
            rx_values = {**values, **flags, **decided}
            self._run(self._rx, rx_values, fire, ctx)
            tracks = policy.apply_prescriptions(tracks, ctx.modifiers)
        return Evaluation(case, facts, flags, ctx.hits, outcome, tracks, ctx.refers,
                          self.compiled, self._static)

    def _run(
        self, ruleset: str, values: Mapping[str, Any], fire: Fire, ctx: _Context,
    ) -> None:
        try:
            batch = self._select(ruleset, values, ctx)
            if self.reuse_states:
                self.host.run_batch(ruleset, ctx.sid, batch, fire, retract=True)
            else:
                try:
                    self.host.run_batch(ruleset, ctx.sid, batch, fire)
                finally:
                    self.host.delete_state(ruleset, ctx.sid)
        except BaseException:
            # An interrupt (KeyboardInterrupt, SystemExit) stays what it is.
            if ctx.error is not None and isinstance(ctx.error[1], Exception):
                key, cause = ctx.error
                raise EngineError(f"rule {key} failed while it ran: {cause!r}", key) from cause
            raise


def _never(value: object) -> bool:
    return False


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
