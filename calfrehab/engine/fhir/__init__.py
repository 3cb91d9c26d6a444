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

from typing import Final

from calfrehab.engine.errors import FhirMappingError, MappingProblem

__all__ = ["CDS_SERVICE_ID", "FhirMappingError", "MappingProblem"]

# The CDS Hooks service's id: the {id} of /cds-services/{id}.
CDS_SERVICE_ID: Final = "calfrehab-next-step"
