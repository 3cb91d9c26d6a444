"""The decision document (``shared/spec/decision-format.md``), version 1.

The contract keys are fixed; the rest (firings with bindings, blockers,
case hash, versions) is this project's, documented in
``docs/decision-format.md``. Apart from ``decision_id`` the document is a
pure function of the case and the rules: no clock, no machine state.
"""

# No `from __future__ import annotations` in this module of pydantic models:
# pydantic evaluates a string annotation by compiling it (a typing.ForwardRef)
# each time a class is defined, about 25 us an annotation, which a cold
# `calfrehab next` paid at every run (issue 28 item 4). Annotations are plain
# expressions here; a name not yet defined is quoted.

import math
import uuid
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal, NamedTuple, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from calfrehab.engine import distversion
from calfrehab.engine.canonical import canonical_bytes, canonical_bytes_checked, spelled_alike
from calfrehab.engine.casefile.model import Prescription
from calfrehab.engine.errors import EngineError
from calfrehab.engine.explanation.reasons import render_reason, week_anchors
from calfrehab.engine.inference.driver import Evaluation
from calfrehab.engine.inference.firing import Firing
from calfrehab.engine.knowledge.compiled import CompiledRuleBase
from calfrehab.engine.knowledge.ladder import NextPrescription
from calfrehab.engine.vocabulary import DecisionKind, Outcome, TrackName

DISCLAIMER = (
    "Decision support: calfrehab proposes the next step from the recorded criteria; "
    "the treating clinician decides."
)


def _version(dist: str) -> str:
    # distversion: importlib.metadata's answer without its import (cold start).
    found = distversion.version(dist)
    return "unknown" if found is None else found


ENGINE_VERSION = _version("calfrehab")
DURABLE_VERSION = _version("durable-rules")


class _Doc(BaseModel):
    # Built when first asked for (a dump, a schema, a document read back):
    # build_document makes a document from the engine's own values without
    # validating them (see _made), so a `next` that prints text and records
    # nothing never builds these validators and serializers (about 5 ms of
    # CPU of a cold `next`, issue 28 item 4).
    model_config = ConfigDict(extra="forbid", defer_build=True)


_D = TypeVar("_D", bound=_Doc)


def _made(cls: type[_D], **values: Any) -> _D:
    """``cls`` from trusted values, as validating them would make it.

    Every value here is the engine's own, already of its field's type
    (str, int, a float for a float, a list, a built NextPrescription or
    Firing), so the model is what ``cls(**values)`` gives: the same
    ``__dict__`` and fields set; and a dump builds the same serializer.
    tests/engine/explanation/test_document_trusted.py compares the two on
    the examples and generated cases."""
    return cls.model_construct(**values)


class Current(_Doc):
    exercise: str
    load_kg: float
    sets: int
    reps: int


class TrackDecision(_Doc):
    decision: DecisionKind
    current: Current | None
    next: NextPrescription | None
    rules: list[str] = Field(description="rules whose decision this is")
    overruled: list[str] = Field(description="decision rules that lost the conflict")


class Reason(_Doc):
    rule: str
    text: str
    sources: list[str] = Field(min_length=1)
    track: str | None = None


class Blocker(_Doc):
    track: str
    rule: str
    text: str


class RulebaseRef(_Doc):
    name: str
    version: str
    sha256: str


class EngineRef(_Doc):
    name: Literal["calfrehab"] = "calfrehab"
    version: str
    durable_rules: str


class DecisionDocument(_Doc):
    schema_version: Literal[1] = 1
    decision_id: str
    case_id: str
    case_sha256: str
    review_date: str
    outcome: Outcome
    tracks: dict[TrackName, TrackDecision]
    reasons: list[Reason] = Field(min_length=1)
    blockers: list[Blocker]
    firings: list[Firing]
    rulebase: RulebaseRef
    engine: EngineRef
    engine_version: str
    disclaimer: str


def _current(rx: Prescription | None) -> Current | None:
    if rx is None:
        return None
    # float(): the float a float field makes of a whole number (20 -> 20.0).
    return _made(Current, exercise=rx.exercise, load_kg=float(rx.load_kg), sets=rx.sets,
                 reps=rx.reps)


# What a rule matched for an alias durable-rules did not report (read only).
_NO_MATCH: Mapping[str, Any] = MappingProxyType({})


class _Fired:
    """What the reasons need of a case's firings, read from the driver's
    hits (:attr:`Evaluation.hits`, as :meth:`Evaluation.firings` reads
    them): when each rule fired, who asserted each flag, and which facts
    each firing matched as true. Indexed once per document, asked once per
    track; the firing records themselves (every binding with its case-file
    paths) are made only where a document states them."""

    def __init__(self, ev: Evaluation) -> None:
        statics = ev.statics
        self.order: dict[str, int] = {}
        self.asserted_by: dict[str, list[str]] = {}
        # What each rule's (last) firing matched, read only for the rules a
        # decision rests on: a few of a case's firings.
        self.hit: dict[str, tuple[tuple[tuple[str, str], ...], Mapping[str, Any]]] = {}
        for seq, (key, aliases, matched) in enumerate(ev.hits, 1):
            self.order[key] = seq
            self.hit[key] = (aliases, matched)
            flag = statics[key].asserts
            if flag:
                self.asserted_by.setdefault(flag, []).append(key)

    def support(self, keys: list[str]) -> list[str]:
        """The deciding rules plus, transitively, the rules that asserted
        the flags they matched as true: a gate's hold names the gate."""
        asserted_by, hit = self.asserted_by, self.hit
        out: list[str] = []
        todo = list(keys)
        while todo:
            key = todo.pop(0)
            if key in out:
                continue
            out.append(key)
            if key not in hit:
                continue
            aliases, matched = hit[key]
            for alias, fact in aliases:
                if matched.get(alias, _NO_MATCH).get("v") is True and fact in asserted_by:
                    todo += asserted_by[fact]
        return out


# A reason as the document states it: (rule, text, sources, track).
_ReasonParts = tuple[str, str, list[str], str | None]


class _RuleText(NamedTuple):
    """What a rule instance's reason is made of, the same for every case."""

    template: str  # the rule's reason, or its title
    track: str | None
    sources: tuple[str, ...]  # the citations of its sources
    blocks: bool  # not a progress decision: it names a blocker where it holds


# Per compiled rule base (by identity, as reasons.py's _PER_WEEK): its rule
# instances' texts, looked up once each per process rather than through
# four attribute hops and a citation lookup per source in every case.
_RULE_TEXTS: dict[int, tuple[CompiledRuleBase, dict[str, _RuleText]]] = {}
_RULE_TEXTS_KEPT = 8


def _rule_texts(compiled: CompiledRuleBase) -> dict[str, _RuleText]:
    held = _RULE_TEXTS.get(id(compiled))
    if held is not None and held[0] is compiled:
        return held[1]
    if len(_RULE_TEXTS) >= _RULE_TEXTS_KEPT:
        _RULE_TEXTS.clear()
    table: dict[str, _RuleText] = {}
    _RULE_TEXTS[id(compiled)] = (compiled, table)
    return table


def _rule_text(compiled: CompiledRuleBase, table: dict[str, _RuleText], key: str
               ) -> _RuleText:
    found = table.get(key)
    if found is None:
        inst = compiled.instances[key]
        rule = inst.view
        found = table[key] = _RuleText(
            rule.reason or rule.title, inst.track,
            tuple(compiled.citation(s) for s in rule.sources),
            rule.decision != "progress")
    return found


def _explained(ev: Evaluation) -> tuple[list[_ReasonParts], list[tuple[str, _ReasonParts]]]:
    """The document's reasons, in firing order, and its blockers as
    (track, the blocking rule's reason): what both forms of the document
    (:func:`build_document`, :func:`document_data`) are made from, so they
    cannot give different reasons."""
    compiled = ev.compiled
    values = ev.values()
    fired = _Fired(ev)

    made: dict[str, _ReasonParts] = {}
    anchors = week_anchors(compiled.fact_specs, ev.facts.anchors)

    texts = _rule_texts(compiled)
    names = compiled.ladder.exercises

    def reason(key: str) -> _ReasonParts:
        # A rule can be a reason and a blocker of several tracks: render once.
        found = made.get(key)
        if found is None:
            rt = _rule_text(compiled, texts, key)
            found = made[key] = (
                key,
                render_reason(rt.template, rt.track, values, names, anchors),
                list(rt.sources),
                rt.track,
            )
        return found

    keys: list[str] = []
    blockers: list[tuple[str, _ReasonParts]] = []
    if ev.outcome == "refer":
        keys = list(ev.refer_rules)
    else:
        for track, result in ev.tracks.items():
            deciding = list(result.deciding)
            if result.decision == "not_started" and not deciding:
                # A track that does not start because a gate is closed (body
                # mass missing for the soleus target, a rupture week) says so.
                deciding = list(fired.asserted_by.get(f"{track}.blocked", ()))
            support = fired.support(deciding)
            keys += [k for k in support if k not in keys]
            keys += [k for k in result.modifiers if k not in keys]
            if result.decision in ("hold", "regress") or (
                result.decision == "not_started" and deciding
            ):
                for k in support:
                    if _rule_text(compiled, texts, k).blocks:
                        blockers.append((track, reason(k)))
    order = fired.order
    keys.sort(key=lambda k: order.get(k, 0))
    reasons = [reason(k) for k in keys]
    if not reasons:
        # The document's contract: at least one reason (decision-format.md).
        raise EngineError(f"case {ev.case.case_id}: a decision with no reason")
    return reasons, blockers


def build_document(
    ev: Evaluation, case_sha256: str, decision_id: str | None = None
) -> DecisionDocument:
    compiled = ev.compiled
    reasons, blocking = _explained(ev)
    made: dict[str, Reason] = {}

    def reason(parts: _ReasonParts) -> Reason:
        found = made.get(parts[0])
        if found is None:
            rule, text, sources, track = parts
            found = made[rule] = _made(Reason, rule=rule, text=text, sources=sources,
                                       track=track)
        return found

    tracks = {
        t: _made(
            TrackDecision,
            decision=r.decision,
            current=_current(r.current),
            next=r.next,
            rules=list(r.deciding),
            overruled=list(r.overruled),
        )
        for t, r in ev.tracks.items()
    }
    case = ev.case
    return _made(
        DecisionDocument,
        decision_id=decision_id or uuid.uuid4().hex,
        case_id=case.case_id,
        case_sha256=case_sha256,
        review_date=case.review_date.isoformat(),
        outcome=ev.outcome,
        tracks=tracks,
        reasons=[reason(r) for r in reasons],
        blockers=[_made(Blocker, track=t, rule=r[0], text=r[1]) for t, r in blocking],
        firings=list(ev.firings),
        rulebase=_made(RulebaseRef, name=compiled.manifest_view.name, version=compiled.version,
                       sha256=compiled.sha256),
        engine=_made(EngineRef, version=ENGINE_VERSION, durable_rules=DURABLE_VERSION),
        engine_version=ENGINE_VERSION,
        disclaimer=DISCLAIMER,
    )


# The JSON-mode form, made directly -------------------------------------

_NEXT_FIELDS: tuple[str, ...] = tuple(NextPrescription.model_fields)
_PLAIN_VALUES = frozenset((str, int, bool, type(None)))


class _Floats:
    """Checks every float as it goes into a document's data: finite, and
    whether orjson spells it as the standard encoder does (for
    :func:`~calfrehab.engine.canonical.canonical_bytes_checked`)."""

    __slots__ = ("alike",)

    def __init__(self) -> None:
        self.alike = True

    def value(self, value: Any) -> Any:
        """A matched fact's value as the model's dump writes it (the field
        is ``Any``, so pydantic infers by type at run time). A fact is a
        bool, an int, a float or a string (catalogue.FactValue), or None;
        a NaN or an infinity is written as None, as the dump writes it."""
        kind = type(value)
        if kind in _PLAIN_VALUES:
            return value
        if kind is float:
            if not math.isfinite(value):
                return None
            if self.alike and not spelled_alike(value):
                self.alike = False
            return value
        # Not a fact's type: the dump's own rules, and the standard encoder.
        self.alike = False
        return _any_json(value)

    def load(self, value: float, what: str) -> float:
        # A load comes from the validated case (a finite number) or from
        # the ladder's arithmetic on it (bounded and rounded): finite.
        # Checked once, here, so the data holds no float that canonical
        # JSON would refuse.
        if not math.isfinite(value):
            raise EngineError(f"a decision with a {what} that is not a number: {value!r}")
        if self.alike and not spelled_alike(value):
            self.alike = False
        return value

    def current(self, rx: Prescription | None) -> dict[str, Any] | None:
        if rx is None:
            return None
        return {"exercise": rx.exercise, "load_kg": self.load(float(rx.load_kg), "current load"),
                "sets": rx.sets, "reps": rx.reps}

    def next(self, nxt: NextPrescription | None) -> dict[str, Any] | None:
        if nxt is None:
            return None
        values = nxt.__dict__
        out = {key: values[key] for key in _NEXT_FIELDS}
        out["load_kg"] = self.load(out["load_kg"], "next load")
        out["cues"] = list(out["cues"])
        return out

    def firings(self, ev: Evaluation) -> list[dict[str, Any]]:
        """The firing records as the dump writes :attr:`Evaluation.firings`,
        made from the driver's hits as that property makes its records
        (driver.Evaluation._records), without the records in between: each
        a copy of its rule instance's record (_firing_templates) with the
        firing's own seq and matched facts put in, in their places."""
        value, paths = self.value, ev.facts.paths
        templates = _firing_templates(ev.statics)
        out = []
        for seq, (key, aliases, matched) in enumerate(ev.hits, 1):
            bound = []
            for alias, fact in aliases:
                v = matched.get(alias, _NO_MATCH).get("v")
                if type(v) not in _PLAIN_VALUES:
                    v = value(v)
                bound.append({"fact": fact, "value": v, "paths": list(paths(fact) or ())})
            record = templates[key].copy()
            record["seq"] = seq
            record["matched"] = bound
            out.append(record)
        return out


# Per reasoner's table of rule instances (Evaluation.statics, by identity):
# each instance's firing record with every field the same for all its
# firings filled in, in the dump's order ("seq" and "matched" are replaced
# in place, so the order holds).
_TEMPLATES: dict[int, tuple[Mapping[str, Any], dict[str, dict[str, Any]]]] = {}
_TEMPLATES_KEPT = 8


def _firing_templates(statics: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    held = _TEMPLATES.get(id(statics))
    if held is not None and held[0] is statics:
        return held[1]
    table = {
        key: {"seq": 0, "rule": key, "rule_id": s.rule_id, "track": s.track, "phase": s.phase,
              "stratum": s.stratum, "matched": None, "asserted": s.asserts, "effect": s.effect}
        for key, s in statics.items()
    }
    if len(_TEMPLATES) >= _TEMPLATES_KEPT:
        _TEMPLATES.clear()
    _TEMPLATES[id(statics)] = (statics, table)
    return table


def _any_json(value: Any) -> Any:
    # What the model's dump does with a value of a field typed Any. Built
    # only if a value of another type ever reaches a document.
    from pydantic import TypeAdapter

    return TypeAdapter(Any).dump_python(value, mode="json")


class DecisionData(NamedTuple):
    """A decision document's JSON-mode data (:func:`document_data`), and
    whether orjson spells every float in it as the standard encoder does."""

    document: dict[str, Any]
    floats_alike: bool

    def canonical_bytes(self) -> bytes:
        """The document's canonical bytes (what the trail stores and hashes)."""
        if self.floats_alike:
            return canonical_bytes_checked(self.document)
        return canonical_bytes(self.document)


def document_data(
    ev: Evaluation, case_sha256: str, decision_id: str | None = None
) -> DecisionData:
    """``build_document(ev, case_sha256, decision_id).model_dump(mode="json")``
    made directly, without a model: the same keys in the same order, the
    same values of the same types (tests/engine/explanation/
    test_document_data.py compares the two on every example, case table
    and generated case). What a batch worker outputs and records, where a
    model built only to be dumped again cost about half the document's time.
    :class:`DecisionDocument` stays the form's definition (its schema, and
    every document read back is validated by it).

    Every float in it is finite and every container a dict or a list, with
    string keys, so its canonical bytes need none of the checks a caller's
    own value does (:meth:`DecisionData.canonical_bytes`)."""
    compiled = ev.compiled
    reasons, blocking = _explained(ev)
    case = ev.case
    floats = _Floats()
    document = {
        "schema_version": 1,
        "decision_id": decision_id or uuid.uuid4().hex,
        "case_id": case.case_id,
        "case_sha256": case_sha256,
        "review_date": case.review_date.isoformat(),
        "outcome": ev.outcome,
        "tracks": {
            t: {
                "decision": r.decision,
                "current": floats.current(r.current),
                "next": floats.next(r.next),
                "rules": list(r.deciding),
                "overruled": list(r.overruled),
            }
            for t, r in ev.tracks.items()
        },
        "reasons": [{"rule": rule, "text": text, "sources": list(sources), "track": track}
                    for rule, text, sources, track in reasons],
        "blockers": [{"track": t, "rule": r[0], "text": r[1]} for t, r in blocking],
        "firings": floats.firings(ev),
        "rulebase": {"name": compiled.manifest_view.name, "version": compiled.version,
                     "sha256": compiled.sha256},
        "engine": {"name": "calfrehab", "version": ENGINE_VERSION,
                   "durable_rules": DURABLE_VERSION},
        "engine_version": ENGINE_VERSION,
        "disclaimer": DISCLAIMER,
    }
    return DecisionData(document, floats.alike)


def decision_json_schema() -> dict[str, Any]:
    return DecisionDocument.model_json_schema()
