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
stored with it in the compiled-rules cache): :func:`stored_acceptance`
compiles those, and derives them from the rulesets' definitions again, as
:func:`acceptance` does, when what is stored is not of the expected shape.

The acceptance is a superset of what durable-rules matches, never a
subset (see matchsource). The facts themselves are unchanged: the
explanation and the firing records still see every fact the case has.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple, TypeGuard

from calfrehab.engine.knowledge.codecache import compiled
from calfrehab.engine.knowledge.matchsource import ANY, acceptance_sources

__all__ = ["ANY", "MISSING", "Acceptance", "acceptance", "stored_acceptance"]


class Acceptance(NamedTuple):
    """What the patterns of a ruleset accept for one fact: ``source`` is
    the Python expression over ``v`` (None: no value), one alternative per
    distinct pattern, and ``accepts`` it compiled."""

    # A NamedTuple, not a frozen dataclass: as immutable, with the same
    # fields, defaults, repr and equality within its type, but a dataclass's
    # generated methods are compiled each time the class is defined (about
    # 0.4 ms of CPU), which every cold `next` paid (issue 28 item 4).

    source: str
    accepts: Callable[[Any], bool]


# What a caller passes as ``stored`` when the rule base keeps nothing for
# the ruleset.
MISSING = object()

_NAMESPACE = {"_NUM": (int, float), "_STR": (str,), "__builtins__": {}}


def _compile(source: str) -> Acceptance:
    # The source is built by matchsource from the compiler's own constants
    # (repr of str, int, float, bool), never from case data.
    # Compiled once and kept between runs with the compiled rule base
    # (knowledge/codecache.py, cold start).
    fn = eval(compiled(f"lambda v: {source}", "eval"), dict(_NAMESPACE))
    return Acceptance(source, fn)


def _compiled_all(sources: dict[str, str] | None) -> dict[str, Acceptance] | None:
    if sources is None:
        return None
    return {name: _compile(source) for name, source in sources.items()}


def acceptance(definitions: Iterable[Mapping[str, Any]]) -> dict[str, Acceptance] | None:
    """Fact name -> what the rules ``definitions`` (durable-rules rule
    definitions, ``{"all": [{alias: pattern}, ...]}``) can match of it.
    A fact no pattern names is absent: it can match nothing. None when a
    rule or pattern is not of the compiler's shape (then every fact is
    sent)."""
    return _compiled_all(acceptance_sources(definitions))


def _well_formed(stored: object) -> TypeGuard[dict[str, str] | None]:
    return stored is None or (isinstance(stored, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in stored.items()))


def stored_acceptance(
    stored: object, definitions: Callable[[], Iterable[Mapping[str, Any]]],
) -> dict[str, Acceptance] | None:
    """:func:`acceptance` of a ruleset from the expressions its compiled
    rule base keeps for it (``stored``: what
    :func:`~calfrehab.engine.knowledge.matchsource.acceptance_sources` gave
    for its definitions, None included); anything else (:data:`MISSING`, or
    not a mapping of names to expressions) means deriving them from
    ``definitions()`` afresh, the path every run took before they were
    stored."""
    if not _well_formed(stored):
        return acceptance(definitions())
    return _compiled_all(stored)
