"""Which facts a ruleset can match, read off its compiled patterns once.

durable-rules runs every fact it is sent through the ruleset's alpha
network, stores it in the state and, on the reused state, has to retract
it again: a fact no pattern can match costs all of that and changes
nothing. At ``prepare()`` each fact a ruleset reads gets an
:class:`Acceptance`, derived from the patterns (``{"n": name}`` plus the
tests on ``v``) the compiler wrote for it; per case a fact is sent only if
its value (or its absence) passes.

The acceptance is a superset of what durable-rules matches, never a
subset: a test this module does not recognise accepts everything, and
Python's ``in`` on a set of constants is at least as permissive as
durable's equality. The facts themselves are unchanged: the explanation
and the firing records still see every fact the case has.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

_EXISTS = {"$ex": {"v": 1}}
_MISSING = {"$nex": {"v": 1}}


@dataclass(frozen=True, slots=True)
class Acceptance:
    """What some pattern of a ruleset accepts for one fact."""

    missing: bool  # a fact sent without a value can match
    # The values that can match, when every pattern tests equality with
    # constants; None: any value can.
    values: frozenset[Hashable] | None

    def accepts(self, value: Any) -> bool:
        if value is None:
            return self.missing
        return self.values is None or value in self.values


ANY = Acceptance(missing=True, values=None)


def _pattern(body: Mapping[str, Any]) -> tuple[str, list[Any]] | None:
    """(fact name, tests on it) of one pattern, or None if not of the
    compiler's shape."""
    if "$and" in body and len(body) == 1:
        parts = body["$and"]
        if parts and isinstance(parts[0], dict) and set(parts[0]) == {"n"}:
            return str(parts[0]["n"]), list(parts[1:])
        return None
    if set(body) == {"n"}:
        return str(body["n"]), []
    return None


def _constant(test: Any) -> Hashable | None:
    """The constant of a ``{"v": constant}`` test (None if it is not one:
    a reference to another fact's value is a dict)."""
    if isinstance(test, dict) and set(test) == {"v"}:
        v = test["v"]
        if isinstance(v, bool | int | float | str):
            return v
    return None


def _one(tests: list[Any]) -> Acceptance:
    """What one pattern accepts, given its tests on ``v``."""
    if not tests:
        return ANY
    if tests == [_MISSING]:
        return Acceptance(True, frozenset())
    rest = [t for t in tests if t != _EXISTS]
    if len(rest) == 1:
        test = rest[0]
        single = _constant(test)
        if single is not None:
            return Acceptance(False, frozenset([single]))
        if isinstance(test, dict) and set(test) == {"$or"}:
            options = [_constant(t) for t in test["$or"]]
            if options and all(o is not None for o in options):
                return Acceptance(False, frozenset(o for o in options if o is not None))
    if rest != tests:
        return Acceptance(False, None)  # needs a value; which, not read here
    return ANY  # not recognised: accept everything


def _union(a: Acceptance, b: Acceptance) -> Acceptance:
    values = None if a.values is None or b.values is None else a.values | b.values
    return Acceptance(a.missing or b.missing, values)


def acceptance(definitions: Iterable[Mapping[str, Any]]) -> dict[str, Acceptance] | None:
    """Fact name -> what the rules ``definitions`` (durable-rules rule
    definitions, ``{"all": [{alias: pattern}, ...]}``) can match of it.
    A fact no pattern names is absent: it can match nothing. None when a
    pattern is not of the compiler's shape (then every fact is sent)."""
    out: dict[str, Acceptance] = {}
    for definition in definitions:
        if set(definition) - {"all", "pri", "run"}:
            return None
        for pattern in definition.get("all", ()):
            for body in pattern.values():
                parsed = _pattern(body) if isinstance(body, dict) else None
                if parsed is None:
                    return None
                name, tests = parsed
                one = _one(tests)
                out[name] = _union(out[name], one) if name in out else one
    return out
