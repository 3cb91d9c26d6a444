"""Plain records of what deciding a case reads of a rule base's
rule-language objects (:mod:`.rulelang`): per rule, per source, and the
manifest's values.

Made when a rule base is compiled and stored eagerly with it in the
compiled-rules cache (knowledge/cache.py), while the pydantic rules,
manifest and sources are unpickled only when something asks for them
(explain, report, the rules commands): a cold ``calfrehab next`` that finds
the cache neither imports the rule language (14 pydantic classes, about
3 ms to define) nor restores its ~500 objects (about 1 ms), issue 28
item 4.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from calfrehab.engine.knowledge.rulelang import Manifest, Prescribe, Rule, Source

# Each view is a tuple with a named property a field, not a NamedTuple:
# the same immutability, equality and compact pickle, but a NamedTuple
# class is compiled when it is defined (about 0.2 ms each, 0.8 ms for these
# four, of every cold run), and restoring one calls its Python __new__,
# where a tuple subclass is restored by tuple's own (C) constructor. Made
# from one iterable of its fields, in order: View((a, b, ...)).


class PrescribeView(tuple[Any, ...]):
    """A prescribe rule's adjustments (:class:`.rulelang.Prescribe`'s
    fields: range, surface, tempo, frequency, cues as a tuple)."""

    __slots__ = ()

    @property
    def range(self) -> str | None:
        return self[0]  # type: ignore[no-any-return]

    @property
    def surface(self) -> str | None:
        return self[1]  # type: ignore[no-any-return]

    @property
    def tempo(self) -> str | None:
        return self[2]  # type: ignore[no-any-return]

    @property
    def frequency(self) -> str | None:
        return self[3]  # type: ignore[no-any-return]

    @property
    def cues(self) -> tuple[str, ...]:
        return self[4]  # type: ignore[no-any-return]


class RuleView(tuple[Any, ...]):
    """What deciding and the decision document read of a rule: id, title,
    reason, priority, phase, sources, and its ``then`` as decision, rung,
    refer, asserts (then.assert_ as written) and prescribe (exactly one of
    them says what it does)."""

    __slots__ = ()

    @property
    def id(self) -> str:
        return self[0]  # type: ignore[no-any-return]

    @property
    def title(self) -> str:
        return self[1]  # type: ignore[no-any-return]

    @property
    def reason(self) -> str | None:
        return self[2]  # type: ignore[no-any-return]

    @property
    def priority(self) -> int:
        return self[3]  # type: ignore[no-any-return]

    @property
    def phase(self) -> str:
        return self[4]  # type: ignore[no-any-return]

    @property
    def sources(self) -> tuple[str, ...]:
        return self[5]  # type: ignore[no-any-return]

    @property
    def decision(self) -> str | None:
        return self[6]  # type: ignore[no-any-return]

    @property
    def rung(self) -> int | None:
        return self[7]  # type: ignore[no-any-return]

    @property
    def refer(self) -> bool | None:
        return self[8]  # type: ignore[no-any-return]

    @property
    def asserts(self) -> str | None:
        return self[9]  # type: ignore[no-any-return]

    @property
    def prescribe(self) -> PrescribeView | None:
        return self[10]  # type: ignore[no-any-return]


class SourceView(tuple[Any, ...]):
    """A source (sources.yaml) as a reason cites it: citation, short, note."""

    __slots__ = ()

    @property
    def citation(self) -> str:
        return self[0]  # type: ignore[no-any-return]

    @property
    def short(self) -> str | None:
        return self[1]  # type: ignore[no-any-return]

    @property
    def note(self) -> str | None:
        return self[2]  # type: ignore[no-any-return]


class ManifestView(tuple[Any, ...]):
    """The manifest's values a run reads: name, version, window_sessions,
    stiffness_window_days."""

    __slots__ = ()

    @property
    def name(self) -> str:
        return self[0]  # type: ignore[no-any-return]

    @property
    def version(self) -> str:
        return self[1]  # type: ignore[no-any-return]

    @property
    def window_sessions(self) -> int:
        return self[2]  # type: ignore[no-any-return]

    @property
    def stiffness_window_days(self) -> int:
        return self[3]  # type: ignore[no-any-return]


def prescribe_view(p: Prescribe) -> PrescribeView:
    return PrescribeView((p.range, p.surface, p.tempo, p.frequency, tuple(p.cues)))


def rule_view(rule: Rule) -> RuleView:
    then = rule.then
    return RuleView((
        rule.id, rule.title, rule.reason, rule.priority, rule.phase, tuple(rule.sources),
        then.decision, then.rung, then.refer, then.assert_,
        None if then.prescribe is None else prescribe_view(then.prescribe)))


def source_view(source: Source) -> SourceView:
    return SourceView((source.citation, source.short, source.note))


def manifest_view(manifest: Manifest) -> ManifestView:
    return ManifestView((manifest.name, manifest.version, manifest.settings.window_sessions,
                         manifest.settings.stiffness_window_days))
