"""Which facts a ruleset can match, read off its compiled patterns once.

durable-rules runs every fact it is sent through the ruleset's alpha
network, stores it in the state and, on the reused state, has to retract
it again: a fact no pattern can match costs all of that and changes
nothing. At ``prepare()`` each fact a ruleset reads gets an
:class:`Acceptance`: the tests every pattern on that fact makes of its
value, as one Python expression
(:func:`calfrehab.engine.knowledge.matchsource.acceptance_sources`),
compiled into one Python predicate; per case a fact is sent only if its
value (or its absence) passes one pattern's tests.

The expressions depend only on the compiled rule base, which keeps them
(:attr:`~calfrehab.engine.knowledge.compiled.CompiledRuleBase.acceptance_sources`,
a cached property stored with it in the compiled-rules cache, made on first
use otherwise): :func:`compiled_acceptance` compiles them.

The acceptance is a superset of what durable-rules matches, never a
subset (see matchsource). The facts themselves are unchanged: the
explanation and the firing records still see every fact the case has.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from calfrehab.engine.knowledge.codecache import compiled
from calfrehab.engine.knowledge.matchsource import ANY, acceptance_sources

__all__ = ["ANY", "Acceptance", "acceptance", "compiled_acceptance"]


class Acceptance(NamedTuple):
    """What the patterns of a ruleset accept for one fact: ``source`` is
    the Python expression over ``v`` (None: no value), one alternative per
    distinct pattern, and ``accepts`` it compiled."""

    # A NamedTuple, not a frozen dataclass: cold start (docs/architecture.md,
    # "Small records").

    source: str
    accepts: Callable[[Any], bool]


_NAMESPACE = {"_NUM": (int, float), "_STR": (str,), "__builtins__": {}}


def _compile(source: str) -> Acceptance:
    # The source is built by matchsource from the compiler's own constants
    # (repr of str, int, float, bool), never from case data.
    # Compiled once and kept between runs with the compiled rule base
    # (knowledge/codecache.py, cold start).
    fn = eval(compiled(f"lambda v: {source}", "eval"), dict(_NAMESPACE))
    return Acceptance(source, fn)


def compiled_acceptance(sources: dict[str, str] | None) -> dict[str, Acceptance] | None:
    """Fact name -> its :class:`Acceptance`, compiled from the expressions
    :func:`~calfrehab.engine.knowledge.matchsource.acceptance_sources` gave
    for a ruleset (None: not of the compiler's shape, every fact is sent)."""
    if sources is None:
        return None
    return {name: _compile(source) for name, source in sources.items()}


def acceptance(definitions: Iterable[Mapping[str, Any]]) -> dict[str, Acceptance] | None:
    """Fact name -> what the rules ``definitions`` (durable-rules rule
    definitions, ``{"all": [{alias: pattern}, ...]}``) can match of it.
    A fact no pattern names is absent: it can match nothing. None when a
    rule or pattern is not of the compiler's shape (then every fact is
    sent)."""
    return compiled_acceptance(acceptance_sources(definitions))
