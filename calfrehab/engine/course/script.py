"""How a scripted patient responds to what is prescribed.

``ideal`` does every prescribed rep with low pain, no next-morning pain and
no stiffness, and the clinic's measures improve week on week (the patient
of clinical-basis §7). The unhappy scripts are the ideal patient with one
bad week K: ``flare:K`` (next-morning pain after the week's last session up
by the flare size), ``missed:K`` (no session that week), ``painful:K``
(pain during at the painful level that week).

These are a simulated patient's responses, not clinical thresholds: the
rules judge them exactly as they would judge a real log.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from calfrehab.engine.errors import ScriptError as ScriptError

ScriptKind = Literal["ideal", "flare", "missed", "painful"]
_SPEC = re.compile(r"^(ideal|flare|missed|painful)(?::(\d{1,3}))?$")


class Response(BaseModel):
    """The scripted patient's numbers (NRS 0-10, repetitions, points)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    pain_during: Annotated[int, Field(ge=0, le=10)] = 1
    pain_next_morning: Annotated[int, Field(ge=0, le=10)] = 0
    morning_stiffness_min: Annotated[int, Field(ge=0)] = 0
    # The bad weeks.
    flare_rise: Annotated[int, Field(ge=0, le=10)] = 2
    painful_pain_during: Annotated[int, Field(ge=0, le=10)] = 4
    # Measures at each weekly review (improving for every script).
    pain_at_rest: Annotated[int, Field(ge=0, le=10)] = 0
    hop_pain: Annotated[int, Field(ge=0, le=10)] = 0
    heel_raise_start: Annotated[int, Field(ge=0)] = 10
    heel_raise_uninvolved: Annotated[int, Field(ge=1)] = 30
    heel_raise_gain_per_week: Annotated[int, Field(ge=0)] = 3
    visa_a_start: Annotated[int, Field(ge=0, le=100)] = 50
    visa_a_gain_per_week: Annotated[int, Field(ge=0, le=100)] = 3


class Script(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    kind: ScriptKind = "ideal"
    week: Annotated[int, Field(ge=1, le=104)] | None = None
    response: Response = Response()

    @property
    def label(self) -> str:
        return self.kind if self.week is None else f"{self.kind}:{self.week}"

    def bad(self, week: int, kind: ScriptKind) -> bool:
        return self.kind == kind and self.week == week


def parse_script(spec: str) -> Script:
    """``ideal``, ``flare:K``, ``missed:K`` or ``painful:K`` (K = course week)."""
    m = _SPEC.match(spec.strip())
    if m is None:
        raise ScriptError(f"script {spec!r}: expected ideal, flare:K, missed:K or painful:K "
                          "(K a course week, 1 or more)")
    kind, week = m.group(1), m.group(2)
    if kind == "ideal":
        if week is not None:
            raise ScriptError(f"script {spec!r}: ideal takes no week")
        return Script()
    if week is None or int(week) < 1:
        raise ScriptError(f"script {spec!r}: {kind} needs a course week K of 1 or more "
                          f"({kind}:K)")
    return Script(kind=kind, week=int(week))  # type: ignore[arg-type]
