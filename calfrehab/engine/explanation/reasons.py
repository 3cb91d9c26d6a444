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

import functools
import re
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

MISSING = "not measured"

# A placeholder, and the unit that belongs to its value when one follows.
PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_.]*)\}(%|/10)?")
# A gate's opening, as the loader leaves it: {opens:FACT:WEEKS}.
OPENS = re.compile(r"\{opens:([a-z_][a-z0-9_.]*):(\d+)\}")


# A rule base's facts counted in weeks from a case date, by the identity of
# its fact_specs mapping: the same for every case, found once per process
# (a rule base is compiled once; a few are kept, in case of reloads).
_PER_WEEK: dict[int, tuple[Mapping[str, Any], tuple[tuple[str, str], ...]]] = {}
_PER_WEEK_KEPT = 8


def _per_week(fact_specs: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    held = _PER_WEEK.get(id(fact_specs))
    if held is not None and held[0] is fact_specs:
        return held[1]
    pairs = tuple(
        (name, key) for name, spec in fact_specs.items()
        if (key := getattr(spec, "per_week_from", None))
    )
    if len(_PER_WEEK) >= _PER_WEEK_KEPT:
        _PER_WEEK.clear()
    _PER_WEEK[id(fact_specs)] = (fact_specs, pairs)
    return pairs


def week_anchors(fact_specs: Mapping[str, Any], anchors: Mapping[str, date]) -> dict[str, date]:
    """For each fact counted in weeks from a case date, that date (when the
    case gives it): what a gate's opening is counted from."""
    return {name: anchors[key] for name, key in _per_week(fact_specs) if key in anchors}


# A template cut once into its pieces: literal text, a placeholder (name,
# unit) or a gate's opening (fact, weeks). Rendering then formats values
# only, instead of running two regular-expression substitutions with a
# Python callback per case. The pieces are those of OPENS.sub followed by
# PLACEHOLDER.sub: an opening's text ("week 6", "2027-01-08 (week 6)")
# always holds a space, so no placeholder can span one.
_Piece = tuple[int, str, str]
_LITERAL, _VALUE, _OPENS = 0, 1, 2


@functools.lru_cache(maxsize=4096)
def _pieces(template: str) -> tuple[_Piece, ...]:
    out: list[_Piece] = []

    def literal(text: str) -> None:
        at = 0
        for m in PLACEHOLDER.finditer(text):
            if m.start() > at:
                out.append((_LITERAL, text[at:m.start()], ""))
            out.append((_VALUE, m.group(1), m.group(2) or ""))
            at = m.end()
        if at < len(text):
            out.append((_LITERAL, text[at:], ""))

    at = 0
    for m in OPENS.finditer(template):
        literal(template[at:m.start()])
        out.append((_OPENS, m.group(1), m.group(2)))
        at = m.end()
    literal(template[at:])
    return tuple(out)


def render_reason(
    template: str, track: str | None, values: Mapping[str, Any],
    names: Mapping[str, Any] | None = None, anchors: Mapping[str, date] | None = None,
) -> str:
    """Fill ``{fact}`` placeholders (``track.`` resolved) with case values;
    exercise ids read as the ladder's plain names when ``names`` is given; a
    gate's ``{opens:FACT:N}`` reads as the date N weeks after FACT's anchor
    and the week (``2027-01-08 (week 6)``)."""
    parts: list[str] = []
    for kind, name, extra in _pieces(template):
        if kind == _LITERAL:
            parts.append(name)
        elif kind == _VALUE:
            parts.append(_value_text(name, extra, track, values, names))
        else:
            weeks = int(extra)
            anchor = (anchors or {}).get(name)
            parts.append(f"week {weeks}" if anchor is None
                         else f"{(anchor + timedelta(weeks=weeks)).isoformat()} (week {weeks})")
    return "".join(parts)


def _value_text(name: str, unit: str, track: str | None, values: Mapping[str, Any],
                names: Mapping[str, Any] | None) -> str:
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
