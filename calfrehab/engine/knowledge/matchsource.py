"""What the patterns of a ruleset accept of each fact's value, as Python
source, read off its durable-rules rule definitions.

For each fact a ruleset reads, the tests every pattern on that fact makes of
its value (``{"n": name}`` plus the tests on ``v`` the compiler writes)
become one Python expression over ``v``, one alternative per distinct
pattern. :mod:`calfrehab.engine.inference.matchable` compiles each into the
predicate that decides, per case, whether a fact is sent at all.

The expressions depend only on the compiled rule base, so they are made
once with it (:attr:`.compiled.CompiledRuleBase.acceptance_sources`) and
kept with it in the compiled-rules cache: a cold ``calfrehab next`` read
about 500 patterns of the shipped rules again on every run (issue 28
item 4).

The acceptance is a superset of what durable-rules matches, never a
subset: a test this module does not recognise, a comparison with another
fact's value, or an order test on a value of another type accepts; Python's
equality is at least as permissive as durable's.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

_EXISTS = {"$ex": {"v": 1}}
_MISSING = {"$nex": {"v": 1}}
_ORDER = {"$lt": "<", "$lte": "<=", "$gt": ">", "$gte": ">="}
_SCALAR = (bool, int, float, str)

# The expression that accepts every value, and the one that accepts none.
ANY = "True"
NONE = "False"


def _const(v: Any) -> str | None:
    """A constant's Python spelling, or None if it is not a plain scalar
    (a reference to another fact's value is a dict)."""
    if type(v) not in _SCALAR or (isinstance(v, float) and not math.isfinite(v)):
        return None
    return repr(v)


def _test(test: Any) -> str:
    """One test on ``v`` as a Python expression; ``True`` when it is not
    read here (accept)."""
    if test == _EXISTS:
        return "v is not None"
    if test == _MISSING:
        return "v is None"
    if not isinstance(test, dict) or len(test) != 1:
        return ANY
    (op, body), = test.items()
    if op == "v":
        c = _const(body)
        return ANY if c is None else f"v == {c}"
    if op == "$or" and isinstance(body, list):
        options = [_test(t) for t in body]
        return ANY if ANY in options else "(" + " or ".join(options) + ")"
    if not (isinstance(body, dict) and set(body) == {"v"}):
        return ANY
    c = _const(body["v"])
    if c is None:
        return ANY  # compared with another fact's value
    if op == "$neq":
        return f"v != {c}"
    if op in _ORDER:
        # Only values of the constant's kind are ordered here; any other
        # value is sent, and durable decides. (_STR and _NUM are names of
        # the namespace the predicate is compiled in: matchable.py.)
        kind = "_STR" if isinstance(body["v"], str) else "_NUM"
        return f"(v.__class__ not in {kind} or v {_ORDER[op]} {c})"
    return ANY


def _pattern(body: Mapping[str, Any]) -> tuple[str, str] | None:
    """(fact name, the pattern's test of its value as an expression), or
    None if the pattern is not of the compiler's shape."""
    if "$and" in body and len(body) == 1:
        parts = body["$and"]
        if parts and isinstance(parts[0], dict) and set(parts[0]) == {"n"}:
            tests = [t for t in (_test(t) for t in parts[1:]) if t != ANY]
            if "v is not None" in tests and "v is None" in tests:
                return str(parts[0]["n"]), NONE  # can never match
            return str(parts[0]["n"]), " and ".join(tests) or ANY
        return None
    if set(body) == {"n"}:
        return str(body["n"]), ANY
    return None


def _joined(alternatives: list[str]) -> str:
    """One expression for a fact's patterns: any of them."""
    unique = list(dict.fromkeys(alternatives))
    if ANY in unique:
        unique = [ANY]
    unique = [a for a in unique if a != NONE] or [NONE]
    return " or ".join(f"({a})" for a in unique) if len(unique) > 1 else unique[0]


def acceptance_sources(definitions: Iterable[Mapping[str, Any]]) -> dict[str, str] | None:
    """Fact name -> the Python expression over ``v`` of what the rules
    ``definitions`` (durable-rules rule definitions, ``{"all": [{alias:
    pattern}, ...]}``) can match of it. A fact no pattern names is absent:
    it can match nothing. None when a rule or pattern is not of the
    compiler's shape (then every fact is sent)."""
    alternatives: dict[str, list[str]] = {}
    for definition in definitions:
        if set(definition) - {"all", "pri", "run"}:
            return None
        for pattern in definition.get("all", ()):
            if not isinstance(pattern, dict):
                return None
            for body in pattern.values():
                parsed = _pattern(body) if isinstance(body, dict) else None
                if parsed is None:
                    return None
                name, expr = parsed
                alternatives.setdefault(name, []).append(expr)
    return {name: _joined(exprs) for name, exprs in alternatives.items()}
