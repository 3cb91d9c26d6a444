"""FHIR at the edges: read a Bundle file into a case, write a case or a
decision as a Bundle. What the CLI and the HTTP service call (through
:mod:`calfrehab.engine.api`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

from calfrehab.engine.casefile.model import Case
from calfrehab.engine.casefile.validation import parse_json, read_input_text, validate_document
from calfrehab.engine.errors import CaseValidationError
from calfrehab.engine.fhir.decision import decision_bundle
from calfrehab.engine.fhir.from_case import case_to_bundle
from calfrehab.engine.fhir.to_case import bundle_to_document, explain_case_errors


def read_json(path: str | Path) -> tuple[Any, str]:
    """A JSON document from a file or ``-`` (standard input), and its name,
    read as case files are (a regular file only, within the input size cap)."""
    text, source = read_input_text(path)
    return parse_json(text, source), source


def is_bundle(document: Any) -> bool:
    return isinstance(document, Mapping) and document.get("resourceType") == "Bundle"


def case_from_fhir(
    data: Any,
    source: str = "<bundle>",
    *,
    case_id: str | None = None,
    review_date: date | None = None,
    ignore_unrelated: bool = False,
) -> tuple[Case, dict[str, Any]]:
    """The validated case a Bundle holds, and its case-file document.
    Raises FhirMappingError naming resources and elements."""
    document, origin = bundle_to_document(
        data, source=source, case_id=case_id, review_date=review_date,
        ignore_unrelated=ignore_unrelated)
    try:
        return validate_document(document, source), document
    except CaseValidationError as exc:
        raise explain_case_errors(source, exc, origin) from None


def read_case_or_bundle(path: str | Path, *, ignore_unrelated: bool = False
                        ) -> tuple[Case, dict[str, Any]]:
    """A case file or a FHIR Bundle holding a case, told apart by content."""
    data, source = read_json(path)
    if is_bundle(data):
        return case_from_fhir(data, source, ignore_unrelated=ignore_unrelated)
    return validate_document(data, source), data


def case_to_fhir(case: Case) -> dict[str, Any]:
    """The case as a FHIR Bundle (JSON object)."""
    result: dict[str, Any] = json.loads(case_to_bundle(case).model_dump_json())
    return result


def decision_to_fhir(case: Case | None, decision: Mapping[str, Any],
                     recorded: datetime, acted_on: Mapping[str, Any] | None = None
                     ) -> dict[str, Any]:
    """The decision (with the case's resources unless ``case`` is None) as
    a FHIR Bundle (JSON object); ``acted_on`` as decision_resources says."""
    bundle = decision_bundle(case, decision, recorded, acted_on)
    result: dict[str, Any] = json.loads(bundle.model_dump_json())
    return result
