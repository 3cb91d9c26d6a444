"""Reason rendering: a rule's ``reason`` (or ``title``) template filled with
the case's values, as the clinician reads it in a decision.

It belongs to the explanation layer: the inference driver decides, and only
the explanation (decision document, HOW/WHY-NOT) turns a rule into a line of
text. A value the case does not give reads ``not measured``, and a unit
written right after its placeholder (``{assessment.heel_raise_lsi}%``,
``{track.pain_during_last}/10``) goes with it, so a reason never says
"unknown%".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

MISSING = "not measured"

# A placeholder, and the unit that belongs to its value when one follows.
PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_.]*)\}(%|/10)?")
# A gate's opening, as the loader leaves it: {opens:FACT:WEEKS}.
OPENS = re.compile(r"\{opens:([a-z_][a-z0-9_.]*):(\d+)\}")


def week_anchors(fact_specs: Mapping[str, Any], anchors: Mapping[str, date]) -> dict[str, date]:
    """For each fact counted in weeks from a case date, that date (when the
    case gives it): what a gate's opening is counted from."""
    out: dict[str, date] = {}
    for name, spec in fact_specs.items():
        key = getattr(spec, "per_week_from", None)
        if key and key in anchors:
            out[name] = anchors[key]
    return out


def render_reason(
    template: str, track: str | None, values: Mapping[str, Any],
    names: Mapping[str, Any] | None = None, anchors: Mapping[str, date] | None = None,
) -> str:
    """Fill ``{fact}`` placeholders (``track.`` resolved) with case values;
    exercise ids read as the ladder's plain names when ``names`` is given; a
    gate's ``{opens:FACT:N}`` reads as the date N weeks after FACT's anchor
    and the week (``2027-01-08 (week 6)``)."""

    def opens(m: re.Match[str]) -> str:
        fact, weeks = m.group(1), int(m.group(2))
        anchor = (anchors or {}).get(fact)
        if anchor is None:
            return f"week {weeks}"
        return f"{(anchor + timedelta(weeks=weeks)).isoformat()} (week {weeks})"

    def sub(m: re.Match[str]) -> str:
        name, unit = m.group(1), m.group(2) or ""
        if name.startswith("track.") and track:
            name = f"{track}.{name[6:]}"
        value = values.get(name)
        if value is None:
            return MISSING
        if isinstance(value, bool):
            return ("yes" if value else "no") + unit
        if isinstance(value, float):
            return f"{value:g}{unit}"
        if names is not None and name.endswith("exercise") and value in names:
            return str(names[value].name).lower() + unit
        return f"{value}{unit}"

    return PLACEHOLDER.sub(sub, OPENS.sub(opens, template))
