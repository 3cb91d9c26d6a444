"""The standard codes calfrehab reads from a chart, loaded from
``chart-codes.yaml`` beside this module (the codes are data: each with its
source, and docs/integration.md's table shows the same).

:class:`ChartCodes` answers the questions the mapping asks of a coding:
which condition kind (and side) an SNOMED CT or ICD-10(-CM) code means, is
this procedure an Achilles repair, is this drug a fluoroquinolone, is this
Observation a pain score or a weight, and how many kilograms a UCUM mass
is.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Final

import yaml
from pydantic import BaseModel, ConfigDict, Field

_FILE: Final = Path(__file__).with_name("chart-codes.yaml")

Coding = tuple[str, str]  # (system URI, code)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class ConditionCode(_Strict):
    system: str
    code: str | None = None
    prefix: str | None = None
    display: str
    kinds: list[str] = Field(min_length=1)
    sides: dict[str, str] = Field(default_factory=dict)
    source: str


class Laterality(_Strict):
    system: str
    code: str
    side: str
    display: str
    source: str


class Coded(_Strict):
    system: str
    code: str
    display: str
    source: str


class Fluoroquinolones(_Strict):
    lookback_days: int = Field(ge=1)
    codes: list[Coded]
    atc_prefix: str
    atc_source: str
    names: list[str]


class Observations(_Strict):
    pain_nrs: Coded
    body_weight: Coded


class ChartCodes(_Strict):
    systems: dict[str, str]
    conditions: list[ConditionCode]
    laterality: list[Laterality]
    achilles_repair: list[Coded]
    fluoroquinolones: Fluoroquinolones
    observations: Observations
    mass_units_kg: dict[str, float]

    def uri(self, name: str) -> str:
        return self.systems[name]

    def _is(self, coded: Coded, coding: Coding) -> bool:
        return coding == (self.uri(coded.system), coded.code)

    def condition(self, codings: Iterable[Coding]) -> tuple[list[str], str | None] | None:
        """(the kinds, the side) a Condition's codes mean, or None if none
        of them is a calf condition. Kinds found by several codes are
        intersected (a SNOMED CT and an ICD-10-CM coding of one Condition
        must agree); a side comes from the code only where it says one."""
        kinds: set[str] | None = None
        side: str | None = None
        for system, code in codings:
            for entry in self.conditions:
                if system != self.uri(entry.system) or not _fits(entry, code):
                    continue
                found = set(entry.kinds)
                kinds = found if kinds is None else kinds & found
                bare = code.replace(".", "").upper()
                for prefix, said in entry.sides.items():
                    if bare.startswith(prefix.replace(".", "").upper()):
                        side = said
        if kinds is None:
            return None
        return sorted(kinds), side

    def side(self, codings: Iterable[Coding]) -> str | None:
        for coding in codings:
            for entry in self.laterality:
                if coding == (self.uri(entry.system), entry.code):
                    return entry.side
        return None

    def is_achilles_repair(self, codings: Iterable[Coding]) -> bool:
        return any(self._is(c, coding) for coding in codings for c in self.achilles_repair)

    def is_fluoroquinolone(self, codings: Iterable[Coding], texts: Iterable[str]) -> bool:
        fq = self.fluoroquinolones
        atc = self.uri("atc")
        for system, code in codings:
            if any(self._is(c, (system, code)) for c in fq.codes):
                return True
            if system == atc and code.upper().startswith(fq.atc_prefix):
                return True
        lowered = [t.lower() for t in texts if t]
        return any(name in text for text in lowered for name in fq.names)

    def is_pain_score(self, codings: Iterable[Coding]) -> bool:
        return any(self._is(self.observations.pain_nrs, c) for c in codings)

    def is_body_weight(self, codings: Iterable[Coding]) -> bool:
        return any(self._is(self.observations.body_weight, c) for c in codings)

    def kilograms(self, value: float, unit: str | None) -> float | None:
        """A UCUM mass in kilograms, or None for a unit that is not one."""
        factor = self.mass_units_kg.get(unit or "")
        return None if factor is None else value * factor


def _fits(entry: ConditionCode, code: str) -> bool:
    if entry.code is not None:
        return code == entry.code
    assert entry.prefix is not None
    # ICD-10 codes come with or without the dot (M76.61, M7661).
    return code.replace(".", "").upper().startswith(entry.prefix.replace(".", "").upper())


@lru_cache(maxsize=1)
def chart_codes() -> ChartCodes:
    """The shipped code table (read once)."""
    data = yaml.safe_load(_FILE.read_text(encoding="utf-8"))
    return ChartCodes.model_validate(data)


__all__ = ["ChartCodes", "chart_codes"]
