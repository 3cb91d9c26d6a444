"""FHIR R4 in and out: case files as Bundles, Bundles as case files, and
decisions as GuidanceResponse, RequestGroup, DetectedIssue and Provenance;
and CDS Hooks cards.

Built on fhir.resources' R4B models (FHIR 4.3.0): the library offers R4B
and R5, not R4 4.0.1, and every resource and element used here has the
same shape in R4 and R4B, so the JSON is what an R4 record system reads.

This package's ``__init__`` stays light (no fhir.resources import): the
error type and the service id are all that :mod:`calfrehab.engine.api`
needs before a FHIR function is actually called.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from calfrehab.engine.errors import CalfrehabError

# The CDS Hooks service's id: the {id} of /cds-services/{id}.
CDS_SERVICE_ID: Final = "calfrehab-next-step"


@dataclass(frozen=True)
class MappingProblem:
    """One thing in a Bundle that cannot become part of a case file."""

    resource: str  # "Observation/abc" or "entry[3]"
    element: str  # "Observation.valueInteger"
    message: str

    def render(self) -> str:
        where = f"{self.resource} {self.element}".strip()
        return f"{where}: {self.message}"

    def as_dict(self) -> dict[str, str]:
        return {"resource": self.resource, "element": self.element, "message": self.message}


class FhirMappingError(CalfrehabError):
    """A Bundle that does not map to a valid case file; carries every problem."""

    def __init__(self, source: str, problems: Iterable[MappingProblem]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__(self.render())

    def render(self) -> str:
        lines = [f"{self.source}: cannot be read as a case ({len(self.problems)} problem(s))"]
        lines += [f"  - {p.render()}" for p in self.problems]
        return "\n".join(lines)
