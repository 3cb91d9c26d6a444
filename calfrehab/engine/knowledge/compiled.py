"""A compiled rule base: what :mod:`.compiler` makes of a checked rules
directory and the driver registers with durable-rules.

Each rule is one :class:`Instance` per track it applies to, each with its
alternatives (:class:`Disjunct`: one durable-rules rule each), grouped into
strata and the prescribe phase (:class:`CompiledRuleBase`).

These types are all a run needs whose compiled rule base comes from the
compiled-rules cache (knowledge/cache.py): compiling (the checks, the
rewrite into disjunctive normal form) is :mod:`.compiler`'s, imported only
when a rule base is compiled (issue 28 item 4, cold start); it re-exports
every name here.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from calfrehab.engine.knowledge.views import (
    ManifestView,
    RuleView,
    SourceView,
    manifest_view,
    rule_view,
    source_view,
)

try:
    # The C unpickler that pickle.loads is, without importing pickle.py
    # itself (its pure-Python pickler, a Jython probe that searches the path,
    # _compat_pickle): about 1 ms of a cold `next`, which only reads
    # (issue 28 item 4). Reading a cache entry (knowledge/cache.py) and the
    # rule objects it keeps for later (CompiledRuleBase._load) both use it;
    # writing imports pickle.
    from _pickle import loads as _unpickle
except ImportError:  # an interpreter without CPython's accelerator
    from pickle import loads as _unpickle
unpickle = _unpickle

_LOADING = threading.Lock()

if TYPE_CHECKING:
    from calfrehab.engine.knowledge.catalogue import FactSpec
    from calfrehab.engine.knowledge.conditions import Cond
    from calfrehab.engine.knowledge.ladder import Ladder
    from calfrehab.engine.knowledge.rulebase import RuleBase
    from calfrehab.engine.knowledge.rulelang import Rule

SINK = "__calfrehab_sink__"
TICK = "__calfrehab_tick__"

# The encoding of a ruleset's definition for durable-rules: UTF-8 text,
# compact. inference/durable_host.py encodes a definition it is given
# without its text the same way (a test compares the two).
_DEFINITION_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class Disjunct(NamedTuple):
    """One durable-rules rule: aliases in order, each bound to a fact."""

    # A NamedTuple, not a frozen dataclass: cold start (docs/architecture.md,
    # "Small records").

    key: str
    aliases: tuple[tuple[str, str], ...]  # (alias, fact name)
    definition: dict[str, Any]


# The rule-language objects (the RuleBase with its rules, manifest and
# sources; each Instance's rule) of a compiled rule base from the cache are
# unpickled on first use: see :mod:`.views` for why. CompiledRuleBase's
# pickled state holds them as one nested pickle (so shared objects stay
# shared); its eager state holds what deciding reads (views, ladder, sha256).


@dataclass
class Instance:
    """One rule for one track (or the whole case): its condition resolved,
    its stratum and its alternatives for durable-rules.

    ``view`` is what deciding reads of its rule, made when it is compiled;
    ``rule`` itself is loaded on first access when the compiled rule base
    came from the cache (its owner's ``_load``)."""

    key: str  # rule id, or rule id@track
    rule: Rule
    file: str
    line: int
    track: str | None
    when: Cond
    asserts: str | None
    stratum: int = 0
    disjuncts: list[Disjunct] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.view: RuleView = rule_view(self.rule)

    @property
    def phase(self) -> str:
        return self.view.phase

    def __getstate__(self) -> dict[str, Any]:
        # Pickled on its own, it is whole; its owner is not pickled with it
        # (CompiledRuleBase.__getstate__ strips its own instances instead).
        state = self.__dict__.copy()
        if state.pop("_owner", None) is not None:
            state["rule"] = self.rule
        return state


@dataclass
class CompiledRuleBase:
    """A rule base compiled: its instances by key, the flags they derive,
    the decide phase's strata and the prescribe phase."""

    base: RuleBase
    instances: dict[str, Instance]
    derived: dict[str, list[str]]  # flag -> producing instance keys
    strata: list[list[str]]  # decide-phase instance keys per stratum
    prescribe: list[str]
    fact_specs: dict[str, FactSpec]

    def __post_init__(self) -> None:
        # What a run reads of the rule base, kept eagerly (see Instance).
        base = self.base
        self.ladder: Ladder = base.ladder
        self.manifest_view: ManifestView = manifest_view(base.manifest)
        self.source_views: dict[str, SourceView] = {
            key: source_view(source) for key, source in base.sources.items()}
        self._sha256 = base.sha256

    @property
    def sha256(self) -> str:
        return self._sha256

    @property
    def version(self) -> str:
        return self.manifest_view.version

    def citation(self, key: str) -> str:
        """A source's citation by key (``base.citation``, without loading it)."""
        return self.source_views[key].citation

    def _load(self) -> None:
        """Unpickle the rule-language objects stored lazily (once)."""
        if "_rule_objects" not in self.__dict__:
            return
        # Under a lock, the stored bytes dropped last: a thread of the
        # server asking meanwhile waits for this load, never sees half of it.
        with _LOADING:
            data = self.__dict__.get("_rule_objects")
            if data is None:
                return
            base, rules = unpickle(data)
            base.ladder = self.ladder  # one ladder, as before it was stored
            for key, inst in self.instances.items():
                inst.__dict__["rule"] = rules[key]
            self.__dict__["base"] = base
            del self.__dict__["_rule_objects"]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        data = state.pop("_rule_objects", None)
        if data is None:
            # Imported here: a run that only reads the cache pickles nothing.
            import pickle

            rules = {key: inst.rule for key, inst in self.instances.items()}
            data = pickle.dumps((state.pop("base"), rules), protocol=pickle.HIGHEST_PROTOCOL)
        state["_rule_objects"] = data
        stripped: dict[str, Instance] = {}
        for key, inst in self.instances.items():
            bare = Instance.__new__(Instance)
            bare.__dict__.update(
                (k, v) for k, v in inst.__dict__.items() if k not in ("rule", "_owner"))
            stripped[key] = bare
        state["instances"] = stripped
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "_rule_objects" not in state:
            # Pickled whole, as before the views: the cache compiles afresh
            # (its _read takes any error as a miss).
            raise ValueError("a compiled rule base of an older layout")
        self.__dict__.update(state)
        for inst in self.instances.values():
            inst.__dict__["_owner"] = self

    def rulesets(self, prefix: str) -> dict[str, dict[str, Any]]:
        """durable-rules ruleset definitions, named under ``prefix``."""
        return {
            f"{prefix}_{suffix}": {
                rule: dict(body, run=f"{prefix}_{suffix}|{keys.get(rule, rule)}")
                for rule, body in rules.items()
            }
            for suffix, (rules, keys) in self._groups().items()
        }

    def _groups(self) -> dict[str, tuple[dict[str, dict[str, Any]], dict[str, str]]]:
        """Per ruleset (by suffix: s0, s1, ..., rx), its rules without
        their ``run``, and each rule's instance key (the sink and tick
        rules have none: their run names themselves)."""
        out: dict[str, tuple[dict[str, dict[str, Any]], dict[str, str]]] = {}
        groups = [(f"s{k}", keys) for k, keys in enumerate(self.strata)]
        groups.append(("rx", self.prescribe))
        for suffix, keys in groups:
            rules: dict[str, dict[str, Any]] = {}
            instance: dict[str, str] = {}
            for key in keys:
                for d in self.instances[key].disjuncts:
                    rules[d.key] = {k: v for k, v in d.definition.items() if k != "run"}
                    instance[d.key] = key
            # Every fact must be handled by some pattern or durable-rules
            # rejects the whole batch: a join that can never complete holds
            # them without running any action.
            rules[SINK] = {"all": [{"a": {"n": SINK}}, {"b": {"$ex": {"n": 1}}}]}
            # durable-rules 2.0.28 crashes (SIGSEGV) deleting the state of a
            # sid for which no action ever ran; a tick fact asserted with
            # every batch runs one no-op action, so there always is one.
            rules[TICK] = {"all": [{"t": {"n": TICK}}]}
            out[suffix] = (rules, instance)
        return out

    @functools.cached_property
    def definition_texts(self) -> dict[str, str]:
        """Per ruleset suffix (s0, ..., rx), the JSON text durable-rules is
        given for it (:meth:`rulesets` without the runs, which the host
        dispatches itself): compact, UTF-8 as durable's own host writes it.
        Made once, and stored with the compiled rule base in the
        compiled-rules cache (knowledge/cache.py touches it before writing),
        so a run that finds the cache does not encode them again (about
        1.5 ms of a cold ``next``, issue 28 item 4)."""
        return {suffix: _DEFINITION_JSON(rules)
                for suffix, (rules, _) in self._groups().items()}

    @functools.cached_property
    def acceptance_sources(self) -> dict[str, dict[str, str] | None]:
        """Per ruleset suffix (s0, ..., rx), what its patterns can match of
        each fact it reads, as Python expressions over ``v``
        (:func:`.matchsource.acceptance_sources` of its rules, the sink and
        the tick aside; None: not of the compiler's shape, every fact is
        sent). The driver compiles them into the predicates that decide
        which facts a case sends (inference/matchable.py). Made once and
        stored with the compiled rule base in the compiled-rules cache
        (knowledge/cache.py touches it before writing), so a run that finds
        the cache does not read the rules' ~500 patterns again (issue 28
        item 4)."""
        # Imported here: a run that finds this stored imports nothing for it.
        from calfrehab.engine.knowledge.matchsource import acceptance_sources

        return {
            suffix: acceptance_sources(
                body for rule, body in rules.items() if rule not in (SINK, TICK))
            for suffix, (rules, _) in self._groups().items()
        }

    def facts_read(self, keys: Iterable[str]) -> set[str]:
        names: set[str] = set()
        for key in keys:
            for d in self.instances[key].disjuncts:
                names.update(fact for _, fact in d.aliases)
        return names


class _Deferred:
    """``Instance.rule`` and ``CompiledRuleBase.base`` while not loaded: a
    non-data descriptor, so it is asked only when the instance's own
    ``__dict__`` lacks the name (a loaded or freshly compiled one has it).
    Not ``__getattr__``: that would run Python code, and raise, for every
    attribute any caller probes (unpickling asks each Instance for
    ``__setstate__``), about 0.5 ms of a cold run."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, obj: object, objtype: type | None = None) -> Any:
        if obj is None:
            raise AttributeError(self.name)  # as a field without a default
        owner = obj if isinstance(obj, CompiledRuleBase) else obj.__dict__.get("_owner")
        if owner is not None:
            owner._load()  # at once if another thread loaded it meanwhile
        try:
            return obj.__dict__[self.name]
        except KeyError:
            raise AttributeError(self.name) from None


if not TYPE_CHECKING:  # for mypy they are the plain fields they are
    # Set after @dataclass has read the fields: not defaults.
    Instance.rule = _Deferred("rule")
    CompiledRuleBase.base = _Deferred("base")
