"""The firing record: one rule that fired, in order, with the facts it
matched and where in the case file they came from.

One type for the driver's trace and the decision document's ``firings``
(``docs/decision-format.md``), so the document serialises the records the
driver made instead of copying them into a second shape.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Binding(_Record):
    fact: str
    value: Any
    paths: list[str]


class Firing(_Record):
    seq: int
    rule: str  # instance key: rule id, or rule id@track
    rule_id: str
    track: str | None
    phase: str
    stratum: int
    matched: list[Binding]
    asserted: str | None
    effect: str | None  # progress / hold / regress / start / refer / prescribe
