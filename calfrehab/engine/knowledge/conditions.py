"""Resolved conditions: the rule language's ``when`` after track names are
filled in, and the two things done with them: evaluate in plain Python (the
explainer, and the floor the engine is measured against) and rewrite into
disjunctive normal form of positive atoms (what durable-rules matches).

Semantics, the same on both paths: a comparison with a missing fact is
false; ``not`` is plain negation. So ``not (x > 5)`` holds when x is missing
or x ≤ 5, and the rewrite spells exactly that out as two alternatives.
Derived facts are flags: true once a rule asserted them, false otherwise.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import NamedTuple, Union

from calfrehab.engine.knowledge.catalogue import FactValue

Scalar = bool | int | float | str
Operand = Scalar | tuple[Scalar, ...] | None

NEGATE = {"==": "!=", "!=": "==", "<": ">=", ">=": "<", ">": "<=", "<=": ">",
          "in": "not_in", "not_in": "in", "exists": "missing", "missing": "exists"}
FLIP = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "==": "==", "!=": "!="}
MAX_DISJUNCTS = 64


def _same(record: tuple[object, ...], other: object) -> bool:
    # Equal as the frozen dataclasses these were: the same class and the
    # same fields. A NamedTuple alone equals any tuple of the same values,
    # AllOf((x,)) == AnyOf((x,)) among them.
    return type(other) is type(record) and tuple.__eq__(record, other) is True


# The conditions are NamedTuples, not frozen dataclasses: as immutable, with
# the same fields, defaults, repr, hashing and (through _same) equality, but a
# dataclass's generated methods are compiled each time the class is defined
# (about 0.4 ms of CPU each), which every cold `next` paid unpickling its
# compiled rule base (issue 28 item 4).


class Leaf(NamedTuple):
    """One comparison of a fact: with a value, with another fact
    (``to_fact``), or whether it exists; ``derived`` for a flag."""

    fact: str
    op: str
    value: Operand = None
    to_fact: str | None = None
    derived: bool = False

    def __eq__(self, other: object) -> bool:
        return _same(self, other)

    def __ne__(self, other: object) -> bool:
        return not _same(self, other)

    def describe(self) -> str:
        if self.op in ("exists", "missing"):
            return f"{self.fact} {self.op}"
        rhs = self.to_fact if self.to_fact else format_value(self.value)
        return f"{self.fact} {self.op} {rhs}"


class AllOf(NamedTuple):
    """Every one of ``items`` holds."""

    items: tuple[Cond, ...]

    def __eq__(self, other: object) -> bool:
        return _same(self, other)

    def __ne__(self, other: object) -> bool:
        return not _same(self, other)


class AnyOf(NamedTuple):
    """At least one of ``items`` holds."""

    items: tuple[Cond, ...]

    def __eq__(self, other: object) -> bool:
        return _same(self, other)

    def __ne__(self, other: object) -> bool:
        return not _same(self, other)


class NotOf(NamedTuple):
    """``item`` does not hold."""

    item: Cond

    def __eq__(self, other: object) -> bool:
        return _same(self, other)

    def __ne__(self, other: object) -> bool:
        return not _same(self, other)


Cond = Union[Leaf, AllOf, AnyOf, NotOf]  # noqa: UP007


def format_value(value: object) -> str:
    """A fact value or threshold as a clinician reads it in explanations."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple | list):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return str(value)


def compare(op: str, left: FactValue | None, right: Operand) -> bool:
    if op == "exists":
        return left is not None
    if op == "missing":
        return left is None
    if left is None or right is None:
        return False
    if op == "in":
        return isinstance(right, tuple) and left in right
    if op == "not_in":
        return isinstance(right, tuple) and left not in right
    if op == "==":
        return left == right and isinstance(left, bool) == isinstance(right, bool)
    if op == "!=":
        return not (left == right and isinstance(left, bool) == isinstance(right, bool))
    if isinstance(left, bool | str) or isinstance(right, bool | str | tuple):
        return False
    if op == "<":
        return left < right
    if op == "<=":
        return left <= right
    if op == ">":
        return left > right
    if op == ">=":
        return left >= right
    raise ValueError(f"unknown operator {op}")


def leaf_holds(leaf: Leaf, values: Mapping[str, FactValue | None]) -> bool:
    left = values.get(leaf.fact)
    if leaf.derived:
        left = bool(left)
    right: Operand = values.get(leaf.to_fact) if leaf.to_fact else leaf.value
    return compare(leaf.op, left, right)


def holds(cond: Cond, values: Mapping[str, FactValue | None]) -> bool:
    if isinstance(cond, Leaf):
        return leaf_holds(cond, values)
    if isinstance(cond, AllOf):
        return all(holds(c, values) for c in cond.items)
    if isinstance(cond, AnyOf):
        return any(holds(c, values) for c in cond.items)
    return not holds(cond.item, values)


def leaves(cond: Cond) -> list[Leaf]:
    if isinstance(cond, Leaf):
        return [cond]
    if isinstance(cond, NotOf):
        return leaves(cond.item)
    return [leaf for c in cond.items for leaf in leaves(c)]


class Atom(NamedTuple):
    """A positive test on one fact; ``other`` names a second fact to compare
    with. For a derived flag, ``op`` is ``==`` and value the polarity."""

    # A NamedTuple, as the conditions above (and equal only to an Atom).

    fact: str
    op: str
    value: Operand = None
    other: str | None = None
    derived: bool = False

    def __eq__(self, other: object) -> bool:
        return _same(self, other)

    def __ne__(self, other: object) -> bool:
        return not _same(self, other)


def _flag_polarity(leaf: Leaf, negated: bool) -> bool:
    positive = (leaf.op == "==" and leaf.value is True) or (leaf.op == "!=" and leaf.value is False)
    return positive != negated


def _alternatives(leaf: Leaf, negated: bool) -> list[list[Atom]]:
    """Positive atoms that together mean the (possibly negated) leaf."""
    if leaf.derived:
        return [[Atom(leaf.fact, "==", _flag_polarity(leaf, negated), derived=True)]]
    if not negated:
        return [[Atom(leaf.fact, leaf.op, leaf.value, leaf.to_fact)]]
    op = NEGATE[leaf.op]
    if leaf.op in ("exists", "missing"):
        return [[Atom(leaf.fact, op)]]
    alts = [[Atom(leaf.fact, "missing")]]
    if leaf.to_fact:
        alts.append([Atom(leaf.to_fact, "missing")])
    alts.append([Atom(leaf.fact, op, leaf.value, leaf.to_fact)])
    return alts


def to_dnf(cond: Cond, negated: bool = False) -> list[list[Atom]]:
    """Disjunctive normal form over positive atoms."""
    if isinstance(cond, Leaf):
        return _alternatives(cond, negated)
    if isinstance(cond, NotOf):
        return to_dnf(cond.item, not negated)
    conjunctive = isinstance(cond, AllOf) != negated
    parts = [to_dnf(c, negated) for c in cond.items]
    if conjunctive:
        out: list[list[Atom]] = []
        for combo in itertools.product(*parts):
            merged = [atom for conj in combo for atom in conj]
            out.append(merged)
            if len(out) > MAX_DISJUNCTS:
                raise ValueError(f"condition expands to more than {MAX_DISJUNCTS} alternatives")
        return out
    result = [conj for part in parts for conj in part]
    if len(result) > MAX_DISJUNCTS:
        raise ValueError(f"condition expands to more than {MAX_DISJUNCTS} alternatives")
    return result


def polar_leaves(cond: Cond, want: bool = True) -> list[tuple[Leaf, bool]]:
    """Every leaf with the truth the rule wants of it (False under a not)."""
    if isinstance(cond, Leaf):
        return [(cond, want)]
    if isinstance(cond, NotOf):
        return polar_leaves(cond.item, not want)
    return [pair for c in cond.items for pair in polar_leaves(c, want)]


def derived_polarities(cond: Cond, negated: bool = False) -> list[tuple[str, bool]]:
    """(derived flag, used positively?) for stratification."""
    if isinstance(cond, Leaf):
        return [(cond.fact, _flag_polarity(cond, negated))] if cond.derived else []
    if isinstance(cond, NotOf):
        return derived_polarities(cond.item, not negated)
    return [p for c in cond.items for p in derived_polarities(c, negated)]
