"""Evaluate one case on a compiled rule base, inside durable-rules.

Prepare once (:class:`Engine` registers the compiled rulesets with the
process's host), then evaluate many: each case runs under its own state id,
deleted when the case is done, so memory stays flat over any number of
cases. Every firing is recorded in order with the facts it matched.

Conflicts resolve by a fixed order, refer over regress over hold over
progress, and the ladder moves a track at most one rung (or one load step).
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from calfrehab.engine.casefile.model import Case
from calfrehab.engine.errors import EngineError
from calfrehab.engine.inference.durable_host import RuleHost, get_host
from calfrehab.engine.knowledge import ladder as ladder_ops
from calfrehab.engine.knowledge.compiler import SINK, TICK, CompiledRuleBase, Instance
from calfrehab.engine.knowledge.facts import FactSet, FactSettings, FactValue, compute_facts
from calfrehab.engine.knowledge.ladder import NextPrescription
from calfrehab.engine.vocabulary import EXERCISES, TRACKS

SEVERITY = {"refer": 4, "regress": 3, "hold": 2, "progress": 1, "start": 1}


@dataclass(frozen=True)
class Firing:
    seq: int
    rule: str  # instance key: rule id, or rule id@track
    rule_id: str
    track: str | None
    phase: str
    stratum: int
    matched: tuple[tuple[str, FactValue | None], ...]
    asserted: str | None
    effect: str | None  # progress / hold / regress / start / refer / prescribe


@dataclass
class TrackResult:
    track: str
    decision: str
    current: Any  # case Prescription or None
    next: NextPrescription | None
    deciding: list[str] = field(default_factory=list)  # instance keys that gave the decision
    overruled: list[str] = field(default_factory=list)  # decision rules that lost the conflict
    modifiers: list[str] = field(default_factory=list)  # prescribe-phase rules applied


@dataclass
class Evaluation:
    case: Case
    facts: FactSet
    flags: dict[str, bool]
    firings: list[Firing]
    outcome: str
    tracks: dict[str, TrackResult]
    refer_rules: list[str]
    compiled: CompiledRuleBase

    def values(self) -> dict[str, FactValue | None]:
        out: dict[str, FactValue | None] = dict(self.facts.values())
        out.update(self.flags)
        return out


@dataclass
class _Context:
    flags_true: set[str] = field(default_factory=set)
    fired: set[str] = field(default_factory=set)
    firings: list[Firing] = field(default_factory=list)
    decisions: dict[str, list[tuple[str, str, int | None]]] = field(default_factory=dict)
    refers: list[str] = field(default_factory=list)
    modifiers: dict[str, list[str]] = field(default_factory=dict)
    stratum: int = 0
    error: tuple[str, BaseException] | None = None


class Engine:
    """A compiled rule base registered on the process's durable-rules host."""

    _sids = itertools.count(1)
    _instances = itertools.count(1)

    def __init__(self, compiled: CompiledRuleBase, host: RuleHost | None = None) -> None:
        self.compiled = compiled
        self.host = host or get_host()
        # Ruleset and action names are global to the host: each engine gets
        # its own, so two engines on the same rules never share actions.
        self.prefix = f"crb{next(self._instances)}_{compiled.sha256[:12]}"
        self.settings = FactSettings(
            window_sessions=compiled.base.manifest.settings.window_sessions,
            stiffness_window_days=compiled.base.manifest.settings.stiffness_window_days,
        )
        self._contexts: dict[str, _Context] = {}
        self._lock = threading.Lock()
        rulesets = compiled.rulesets(self.prefix)
        self.ruleset_names = list(rulesets)
        actions: dict[str, Any] = {}
        for rules in rulesets.values():
            for dkey, definition in rules.items():
                if dkey in (SINK, TICK):
                    actions[definition["run"]] = _noop
                else:
                    actions[definition["run"]] = self._make_action(dkey)
        # Facts each stratum reads, decided once here, not per case.
        self._reads: list[list[tuple[str, bool, bool]]] = []
        for k, keys in enumerate(compiled.strata):
            self._reads.append(self._plan(compiled.facts_read(keys), k))
        self._rx_reads = self._plan(compiled.facts_read(compiled.prescribe), len(compiled.strata))
        self._disjunct_aliases = {
            d.key: (inst, d.aliases)
            for inst in compiled.instances.values()
            for d in inst.disjuncts
        }
        self.host.register(rulesets, actions)

    def _plan(self, names: set[str], stratum: int) -> list[tuple[str, bool, bool]]:
        """(fact, is derived flag, flag complete before this stratum)."""
        plan = []
        for name in sorted(names):
            producers = self.compiled.derived.get(name)
            if producers is None:
                plan.append((name, False, False))
            else:
                complete = all(
                    self.compiled.instances[p].stratum < stratum
                    or self.compiled.instances[p].phase != "decide"
                    for p in producers
                )
                plan.append((name, True, complete))
        return plan

    def _make_action(self, dkey: str) -> Any:
        def action(c: Any) -> None:
            ctx = self._contexts[str(c.s["sid"])]
            inst, aliases = self._disjunct_aliases[dkey]
            try:
                self._on_fire(ctx, inst, aliases, c._m or {}, c)
            except BaseException as exc:
                # durable-rules hands the exception back in the state as a
                # string; keep the rule and the exception for the caller.
                if ctx.error is None:
                    ctx.error = (inst.key, exc)
                raise

        return action

    def _on_fire(
        self, ctx: _Context, inst: Instance, aliases: tuple[tuple[str, str], ...],
        matched: Mapping[str, Any], c: Any,
    ) -> None:
        if inst.key in ctx.fired:
            return  # another alternative of the same rule already fired
        ctx.fired.add(inst.key)
        then = inst.rule.then
        bound = tuple((fact, matched.get(alias, {}).get("v")) for alias, fact in aliases)
        effect: str | None = None
        if then.decision:
            assert inst.track is not None
            ctx.decisions.setdefault(inst.track, []).append((then.decision, inst.key, then.rung))
            effect = then.decision
        elif then.refer:
            ctx.refers.append(inst.key)
            effect = "refer"
        elif then.prescribe:
            assert inst.track is not None
            ctx.modifiers.setdefault(inst.track, []).append(inst.key)
            effect = "prescribe"
        ctx.firings.append(Firing(
            len(ctx.firings) + 1, inst.key, inst.rule.id, inst.track, inst.phase, inst.stratum,
            bound, inst.asserts, effect,
        ))
        if inst.asserts and inst.asserts not in ctx.flags_true:
            ctx.flags_true.add(inst.asserts)
            # Forward chaining: rules of this stratum waiting on the flag fire.
            c.assert_fact({"n": inst.asserts, "v": True})

    def _batch(
        self, sid: str, plan: list[tuple[str, bool, bool]], values: Mapping[str, Any],
        ctx: _Context,
    ) -> list[dict[str, Any]]:
        batch: list[dict[str, Any]] = [{"sid": sid, "n": TICK}]
        for name, is_flag, complete in plan:
            fact: dict[str, Any] = {"sid": sid, "n": name}
            if is_flag:
                if complete:
                    fact["v"] = name in ctx.flags_true
                elif name in ctx.flags_true:
                    fact["v"] = True
                else:
                    continue
            else:
                value = values.get(name)
                if value is not None:
                    fact["v"] = value
            batch.append(fact)
        return batch

    def evaluate(self, case: Case) -> Evaluation:
        facts = compute_facts(case, self.settings)
        values: dict[str, Any] = dict(facts.values())
        sid = f"c{next(self._sids)}"
        ctx = _Context()
        with self._lock:
            self._contexts[sid] = ctx
        try:
            for k, plan in enumerate(self._reads):
                ctx.stratum = k
                name = f"{self.prefix}_s{k}"
                try:
                    self._assert(name, self._batch(sid, plan, values, ctx), ctx)
                finally:
                    self.host.delete_state(name, sid)
            flags = {flag: flag in ctx.flags_true for flag in self.compiled.derived}
            outcome, tracks = self._resolve(case, ctx)
            rx_values = {**values, **flags, **decision_facts(tracks)}
            if outcome != "refer" and self.compiled.prescribe:
                name = f"{self.prefix}_rx"
                plan = [(n, False, False) for n, _, _ in self._rx_reads]
                try:
                    self._assert(name, self._batch(sid, plan, rx_values, ctx), ctx)
                finally:
                    self.host.delete_state(name, sid)
                self._apply_modifiers(tracks, ctx)
        finally:
            with self._lock:
                del self._contexts[sid]
        return Evaluation(case, facts, flags, ctx.firings, outcome, tracks, ctx.refers,
                          self.compiled)

    def _assert(self, ruleset: str, batch: list[dict[str, Any]], ctx: _Context) -> None:
        try:
            self.host.assert_facts(ruleset, batch)
        except EngineError as exc:
            if ctx.error is not None:
                key, cause = ctx.error
                raise EngineError(f"rule {key} failed while it ran: {cause!r}", key) from cause
            raise exc
        if ctx.error is not None:
            key, cause = ctx.error
            raise EngineError(f"rule {key} failed while it ran: {cause!r}", key) from cause

    def _resolve(self, case: Case, ctx: _Context) -> tuple[str, dict[str, TrackResult]]:
        lad = self.compiled.base.ladder
        kind = case.condition.kind
        if ctx.refers:
            return "refer", {
                t: TrackResult(t, "refer", case.program.on(t), None, list(ctx.refers))
                for t in TRACKS
            }
        tracks: dict[str, TrackResult] = {}
        for track in TRACKS:
            current = case.program.on(track)
            options = ctx.decisions.get(track, [])
            if not options:
                if current is not None:
                    raise EngineError(
                        f"no rule decided the {track} track (the rule base has a gap)")
                tracks[track] = TrackResult(track, "not_started", None, None)
                continue
            top = max(SEVERITY[d] for d, _, _ in options)
            winners = [(d, key, rung) for d, key, rung in options if SEVERITY[d] == top]
            losers = [key for d, key, _ in options if SEVERITY[d] != top]
            kinds = {d for d, _, _ in winners}
            decision = sorted(kinds)[0]
            deciding = [key for _, key, _ in winners]
            try:
                if current is None:
                    if decision in ("start", "progress"):
                        rungs = sorted({r for _, _, r in winners if r is not None})
                        if len(rungs) != 1:
                            raise EngineError(
                                f"start rules for {track} disagree on the rung: {rungs}")
                        nxt = ladder_ops.start(lad, track, rungs[0])
                        tracks[track] = TrackResult(track, "start", None, nxt, deciding, losers)
                    else:
                        tracks[track] = TrackResult(track, "not_started", None, None,
                                                    deciding, losers)
                    continue
                if "start" in kinds:
                    raise EngineError(f"a start rule fired on the started {track} track: "
                                      f"{', '.join(deciding)}")
                if decision == "progress":
                    nxt = ladder_ops.progress(lad, track, current, kind)
                    allowed = lad.tracks[track].at(EXERCISES[nxt.exercise][1])
                    if allowed and allowed.goals and case.patient.goal not in allowed.goals:
                        raise EngineError(
                            f"{', '.join(deciding)} progressed {track} to {nxt.exercise}, "
                            f"which the ladder keeps for goals {allowed.goals}")
                elif decision == "regress":
                    nxt_or_none = ladder_ops.regress(lad, track, current, kind)
                    tracks[track] = TrackResult(track, "regress", current, nxt_or_none,
                                                deciding, losers)
                    continue
                else:
                    nxt = ladder_ops.hold(lad, track, current)
            except KeyError as exc:
                raise EngineError(f"the ladder cannot apply {decision} to {track}: {exc}") from None
            tracks[track] = TrackResult(track, decision, current, nxt, deciding, losers)
        return "continue", tracks

    def _apply_modifiers(self, tracks: dict[str, TrackResult], ctx: _Context) -> None:
        for track, keys in ctx.modifiers.items():
            result = tracks[track]
            if result.next is None:
                continue
            ordered = sorted(keys, key=lambda k: (self.compiled.instances[k].rule.priority, k))
            update: dict[str, Any] = {}
            cues = list(result.next.cues)
            # Cues add up, most important first; other fields: the highest
            # priority rule's value wins (applied last).
            for key in ordered:
                rx = self.compiled.instances[key].rule.then.prescribe
                assert rx is not None
                for name in ("range", "surface", "tempo", "frequency"):
                    value = getattr(rx, name)
                    if value is not None:
                        update[name] = value
            # Prepending in ascending priority leaves the highest first.
            for key in ordered:
                rx = self.compiled.instances[key].rule.then.prescribe
                assert rx is not None
                cues = [c for c in rx.cues if c not in cues] + cues
            update["cues"] = cues
            result.next = result.next.model_copy(update=update)
            result.modifiers = ordered


def decision_facts(tracks: Mapping[str, TrackResult]) -> dict[str, Any]:
    """The facts the prescription phase reads: each track's decision and the
    rung and exercise it leads to (one definition, for the engine and the
    explainer)."""
    out: dict[str, Any] = {}
    for track, result in tracks.items():
        out[f"{track}.decision"] = result.decision
        if result.next is not None:
            out[f"{track}.next_exercise"] = result.next.exercise
            out[f"{track}.next_rung"] = EXERCISES[result.next.exercise][1]
    return out


def _noop(c: Any) -> None:
    return


_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_.]*)\}")


def render_reason(
    template: str, track: str | None, values: Mapping[str, Any],
    names: Mapping[str, Any] | None = None,
) -> str:
    """Fill ``{fact}`` placeholders (``track.`` resolved) with case values;
    exercise ids read as the ladder's plain names when ``names`` is given."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name.startswith("track.") and track:
            name = f"{track}.{name[6:]}"
        value = values.get(name)
        if value is None:
            return "unknown"
        if isinstance(value, float):
            return f"{value:g}"
        if isinstance(value, bool):
            return "yes" if value else "no"
        if names is not None and name.endswith("exercise") and value in names:
            return str(names[value].name).lower()
        return str(value)

    return _PLACEHOLDER.sub(sub, template)
