"""The pain model's bands, read from the rule base.

The report and the handout draw and word the pain-monitoring model
(Silbernagel 2007: 0–3 safe, 4–5 acceptable, above 5 not; next-morning
pain above 5 or up by 2 or more is a flare). The numbers are the rules'
own: a clinic that changes its rules changes its report.
"""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import BaseModel, ConfigDict

from calfrehab.engine.errors import RuleDataError
from calfrehab.engine.knowledge.rulelang import All, Any_, Compare, Not, Predicate, Rule

# Band limit -> (the pain-model rule that sets it, its fact, its comparison).
# Other rules compare the same facts with other limits (irritability holds
# at the margin), so a limit is read from its own rule only.
_LIMITS = {
    "safe_max": ("pain-during-within-margin", "track.pain_during_max_window", "<="),
    "acceptable_max": ("pain-during-over-limit", "track.pain_during_last", ">"),
    "morning_max": ("session-flare-next-morning", "session.pain_next_morning_last", ">"),
    "morning_rise": ("session-flare-next-morning-rise", "session.pain_next_morning_change",
                     ">="),
}
# Limits a rule base may leave out (a clinic's older rules): None when no
# rule sets them.
_OPTIONAL = {
    "morning_margin": ("gate-next-morning-acceptable", "session.pain_next_morning_last", ">"),
    "strain_max": ("calf-strain-pain-free-gate", "track.pain_during_max_window", ">"),
}


class PainBands(BaseModel):
    """Pain during: 0..safe_max safe, up to acceptable_max acceptable, above
    not; next-morning pain above morning_max, or up by morning_rise, is a
    flare."""

    model_config = ConfigDict(frozen=True)

    safe_max: int
    acceptable_max: int
    morning_max: int
    morning_rise: int
    # Next-morning pain above this (up to morning_max) holds every track.
    morning_margin: int | None = None
    # A calf strain is loaded pain-free: pain during at most this.
    strain_max: int | None = None
    scale_max: int = 10


def _compares(cond: Predicate, negated: bool = False) -> Iterator[Compare]:
    if isinstance(cond, Compare):
        if not negated:
            yield cond
    elif isinstance(cond, All):
        for c in cond.all:
            yield from _compares(c, negated)
    elif isinstance(cond, Any_):
        for c in cond.any:
            yield from _compares(c, negated)
    elif isinstance(cond, Not):
        yield from _compares(cond.not_, not negated)


def pain_bands(rules: list[Rule]) -> PainBands:
    """The bands the rules use; an error names a limit no rule (or more than
    one value) sets."""
    found: dict[str, set[float]] = {k: set() for k in (*_LIMITS, *_OPTIONAL)}
    for rule in rules:
        for cmp in _compares(rule.when):
            for key, (rule_id, fact, op) in (*_LIMITS.items(), *_OPTIONAL.items()):
                if (rule.id == rule_id and cmp.fact == fact and cmp.op == op
                        and isinstance(cmp.value, (int, float))):
                    found[key].add(float(cmp.value))
    where = {**_LIMITS, **_OPTIONAL}
    problems = [f"{key} (rule {where[key][0]}: {where[key][1]} {where[key][2]}): "
                + ("no rule sets it" if not values else f"rules disagree: {sorted(values)}")
                for key, values in found.items()
                if len(values) > 1 or (key in _LIMITS and not values)]
    if problems:
        raise RuleDataError("the pain model's bands cannot be read from the rules: "
                            + "; ".join(problems))
    return PainBands(**{k: int(next(iter(v))) for k, v in found.items() if v})
