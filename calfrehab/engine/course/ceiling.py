"""Where a projected course stops adding load (issue 22 item 4).

The rules keep proposing a load step each week a patient does well; a
projection that follows them for twelve weeks adds weight no plan aims for.
The rule base states the ceiling as parameters (``rulebase.yaml``:
``projection_load_ceiling_bw`` with its rationale, and
``projection_reference_body_mass_kg`` for a case with no body mass): once the
load through the calf reaches the ceiling, the simulated patient keeps that
load. Only the simulated course is capped; no decision reads these.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from calfrehab.engine.knowledge.ladder import Ladder

CEILING_PARAMETER = "projection_load_ceiling_bw"
REFERENCE_MASS_PARAMETER = "projection_reference_body_mass_kg"


@dataclass(frozen=True)
class LoadCeiling:
    """The ceiling on the load through the calf, as a multiple of body
    weight, and the body mass assumed when the case records none."""

    body_weights: float
    reference_body_mass_kg: float

    @classmethod
    def from_params(cls, params: dict[str, float | int]) -> LoadCeiling | None:
        """The rule base's ceiling, or None when it states none (no cap)."""
        if CEILING_PARAMETER not in params or REFERENCE_MASS_PARAMETER not in params:
            return None
        return cls(float(params[CEILING_PARAMETER]), float(params[REFERENCE_MASS_PARAMETER]))

    def max_added_kg(self, ladder: Ladder, exercise: str, body_mass_kg: float | None) -> float:
        """The most added load on ``exercise`` that keeps the load through
        the calf at or under the ceiling, in whole plates (never negative):
        a seated raise carries the added load alone, a standing one the body
        mass as well."""
        mass = body_mass_kg if body_mass_kg is not None else self.reference_body_mass_kg
        through_calf = self.body_weights * mass
        added = through_calf if exercise in ladder.load.seated_exercises else through_calf - mass
        plate = ladder.load.plate_kg
        return max(0.0, math.floor(added / plate) * plate)

    def cap(self, ladder: Ladder, rx: dict[str, Any], before: dict[str, Any] | None,
            body_mass_kg: float | None) -> dict[str, Any]:
        """``rx`` with its load at most the ceiling's; a load already past
        it on the same exercise is kept, never cut (the projection stops
        adding, it does not take away)."""
        top = self.max_added_kg(ladder, rx["exercise"], body_mass_kg)
        if before is not None and before.get("exercise") == rx["exercise"]:
            top = max(top, float(before.get("load_kg") or 0))
        if float(rx["load_kg"] or 0) <= top:
            return rx
        return {**rx, "load_kg": top}
