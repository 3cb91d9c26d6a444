"""The firing record: one rule that fired, in order, with the facts it
matched and where in the case file they came from.

One type for the driver's trace and the decision document's ``firings``
(``docs/decision-format.md``), so the document serialises the records the
driver made instead of copying them into a second shape.

Frozen dataclasses rather than pydantic models: the driver makes one per
firing and per matched fact, on the per-case hot path, from values it
already holds typed; pydantic serialises them and builds their schema
(``__pydantic_config__``) as it would a model's, and validates them when a
document is read back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import ConfigDict


@dataclass(frozen=True, slots=True)
class Binding:
    __pydantic_config__: ClassVar[ConfigDict] = ConfigDict(extra="forbid")

    fact: str
    value: Any
    paths: list[str]


@dataclass(frozen=True, slots=True)
class Firing:
    __pydantic_config__: ClassVar[ConfigDict] = ConfigDict(extra="forbid")

    seq: int
    rule: str  # instance key: rule id, or rule id@track
    rule_id: str
    track: str | None
    phase: str
    stratum: int
    matched: list[Binding]
    asserted: str | None
    effect: str | None  # progress / hold / regress / start / refer / prescribe
