"""Safety rules that can never fire, found before a case ever needs them.

A referral rule with an extra ``age_years > 150`` passed ``rules check``
(issue 27): the case format allows ages 12 to 100, so the rule can never
refer anyone, and only ``rules test`` (a case table written for it) would
notice. Here every alternative of a safety rule's condition (its DNF) is
checked against the ranges the case format itself gives its fields
(``casefile/model.py``: ``age_years`` 12-100, ``body_mass_kg`` 25-250, ...):
a rule none of whose alternatives can hold is refused, naming the test and
the range. Only facts that are case-file fields as they are (``patient.*``,
``condition.*``) have a range here; a test on any other fact is taken to be
able to hold.

A safety rule is one that refers (a red flag or a referral), or holds or
regresses a track (a gate), or whose id says it is a gate or a red flag.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import annotated_types
from pydantic import BaseModel

from calfrehab.engine.casefile.model import Case
from calfrehab.engine.errors import RuleProblem
from calfrehab.engine.knowledge.conditions import Atom, format_value, to_dnf

if TYPE_CHECKING:
    from calfrehab.engine.knowledge.compiler import CompiledRuleBase, Instance

__all__ = ["case_field_ranges", "unreachable_safety_rules"]

Range = tuple[float | None, float | None]  # inclusive bounds, None: open


def _model_of(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):  # X | None
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def _fields(model: type[BaseModel], prefix: str) -> Iterator[tuple[str, Range]]:
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        inner = _model_of(info.annotation)
        if inner is not None:
            yield from _fields(inner, f"{path}.")
            continue
        low: float | None = None
        high: float | None = None
        metadata = list(info.metadata)
        for arg in getattr(info.annotation, "__args__", ()):  # Annotated[...] | None
            for meta in getattr(arg, "__metadata__", ()):
                metadata += getattr(meta, "metadata", [meta])
        for meta in metadata:
            if isinstance(meta, annotated_types.Ge):
                low = float(meta.ge)  # type: ignore[arg-type]
            elif isinstance(meta, annotated_types.Le):
                high = float(meta.le)  # type: ignore[arg-type]
        if low is not None or high is not None:
            yield path, (low, high)


def case_field_ranges() -> dict[str, Range]:
    """The numeric ranges the case format gives its single fields, by the
    dotted path a rule names them with (``patient.age_years``)."""
    return dict(_fields(Case, ""))


def _impossible(atom: Atom, ranges: dict[str, Range]) -> str | None:
    """Why ``atom`` cannot hold for any valid case, or None."""
    bounds = ranges.get(atom.fact)
    if bounds is None or atom.other is not None or atom.derived:
        return None
    value = atom.value
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    low, high = bounds
    never = {
        ">": high is not None and value >= high,
        ">=": high is not None and value > high,
        "<": low is not None and value <= low,
        "<=": low is not None and value < low,
        "==": (high is not None and value > high) or (low is not None and value < low),
    }.get(atom.op, False)
    if not never:
        return None
    span = f"{format_value(low) if low is not None else '…'} to " \
           f"{format_value(high) if high is not None else '…'}"
    return (f"`{atom.fact} {atom.op} {format_value(value)}` cannot hold: the case format "
            f"allows {atom.fact} from {span}")


def _is_safety(inst: Instance) -> bool:
    then = inst.rule.then
    named = any(word in inst.rule.id for word in ("gate", "red-flag"))
    return bool(then.refer) or then.decision in ("hold", "regress") or named


def unreachable_safety_rules(compiled: CompiledRuleBase) -> list[RuleProblem]:
    """A problem for each safety rule that no valid case can make fire."""
    ranges = case_field_ranges()
    problems: list[RuleProblem] = []
    seen: set[str] = set()
    for inst in compiled.instances.values():
        if inst.rule.id in seen or not _is_safety(inst):
            continue
        seen.add(inst.rule.id)
        reasons = []
        for conjunction in to_dnf(inst.when):
            why = next((w for a in conjunction if (w := _impossible(a, ranges))), None)
            if why is None:
                break  # this alternative can hold: the rule can fire
            reasons.append(why)
        else:
            if reasons:
                problems.append(RuleProblem(inst.file, (
                    "this safety rule can never fire on a valid case: "
                    + "; ".join(dict.fromkeys(reasons))), inst.line, inst.rule.id))
    return problems
