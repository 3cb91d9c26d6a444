"""Reason templates are cut into pieces once and rendered from them: the
text is what the two substitutions (openings, then placeholders) gave."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import pytest

from calfrehab.engine.explanation.reasons import MISSING, render_reason, week_anchors

VALUES = {"a": 1.5, "b": "z", "n": 3, "flag": True, "straight_knee.exercise": "x1",
          "straight_knee.pain_during_last": 2}
NAMES = {"x1": SimpleNamespace(name="Two-Leg Heel Raise")}


@pytest.mark.parametrize(("template", "anchors", "text"), [
    ("plain text", None, "plain text"),
    ("{a}{opens:f:2}{b}%", None, "1.5week 2z%"),
    ("{a}/10{opens:f:1}", {"f": date(2027, 1, 1)}, "1.5/102027-01-08 (week 1)"),
    ("{opens:f:6}", {"f": date(2027, 1, 1)}, "2027-02-12 (week 6)"),
    ("{track.exercise} then {track.pain_during_last}/10", None, "two-leg heel raise then 2/10"),
    ("{missing}% and {flag}", None, f"{MISSING} and yes"),
    ("{{a}}", None, "{1.5}"),
    ("{a}%%", None, "1.5%%"),
    ("{a and a}", None, "{a and a}"),
    ("{n}", None, "3"),
])
def test_templates_render_as_the_substitutions_did(
    template: str, anchors: dict[str, date] | None, text: str,
) -> None:
    assert render_reason(template, "straight_knee", VALUES, NAMES, anchors) == text
    # Twice: the second render comes from the cut template.
    assert render_reason(template, "straight_knee", VALUES, NAMES, anchors) == text


def test_week_anchors_follow_the_fact_specs_given() -> None:
    specs = {"weeks": SimpleNamespace(per_week_from="injury.anchor"),
             "other": SimpleNamespace(per_week_from=None)}
    day = date(2026, 10, 1)
    assert week_anchors(specs, {"injury.anchor": day}) == {"weeks": day}
    assert week_anchors(specs, {}) == {}
    # Another rule base's specs are not answered from the first one's.
    assert week_anchors({"w2": SimpleNamespace(per_week_from="x")}, {"x": day}) == {"w2": day}
