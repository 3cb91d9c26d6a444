"""A record system's chart and calfrehab's own training record, merged into
one case (docs/integration.md, "The chart and calfrehab's record").

The chart holds the clinical context: who the patient is (age, sex), the
active calf condition and its side, the Achilles repair, the weight, the
medications and red flags, and pain scores. calfrehab's case store holds
what no record system does: the programme, the sessions (pain per
exercise, sets done), the clinic's assessments. :func:`chart_case` reads
the chart (a CDS Hooks prefetch as one Bundle) and lays it over the stored
case file, the more cautious value winning where both speak:

- the patient's age and sex, and the latest weight, are the chart's;
- the condition's kind is calfrehab's record's (the chart's code may fit
  two kinds: SNOMED CT 11654001 and ICD-10 M76.6 are both tendinopathies);
  only chart Conditions of that kind are read. The side and onset are the
  record's, the chart's when the record has none; a side the chart gives
  differently is refused;
- the repair date is the later of the two (rupture gates count from it);
- red flags are both lists together (a fluoroquinolone in the chart is
  ``recent_fluoroquinolone``);
- chart pain scores join the assessments (a score on a day the record
  also assessed: the higher one).

Without a stored case, a chart that itself holds calfrehab's record (a
CarePlan calfrehab wrote) is decided as it is; otherwise there is nothing
to decide, and :class:`NoRecord` says what to record.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from datetime import date, tzinfo
from typing import Any

from calfrehab.engine.casefile.model import Case
from calfrehab.engine.casefile.validation import validate_document
from calfrehab.engine.errors import CaseValidationError, NoRecord
from calfrehab.engine.fhir import FhirMappingError, MappingProblem, codes
from calfrehab.engine.fhir.chartcodes import chart_codes
from calfrehab.engine.fhir.to_case import bundle_to_document, explain_case_errors


def _merge_assessments(stored: list[dict[str, Any]], chart: list[dict[str, Any]]
                       ) -> list[dict[str, Any]]:
    out = [dict(a) for a in stored]
    by_date = {a.get("date"): a for a in out}
    for extra in chart:
        same = by_date.get(extra.get("date"))
        if same is None:
            out.append(dict(extra))
            by_date[extra.get("date")] = out[-1]
            continue
        for key, value in extra.items():
            if key == "date":
                continue
            if key in ("pain_at_rest", "hop_pain") and isinstance(same.get(key), int):
                same[key] = max(same[key], value)  # the more cautious reading
            elif key not in same:
                same[key] = value
    return out


def merge_case(stored: Mapping[str, Any], chart: Mapping[str, Any], source: str
               ) -> dict[str, Any]:
    """calfrehab's stored case document with the chart's clinical context
    laid over it (see the module docstring). Raises FhirMappingError when
    the two disagree in a way that cannot be settled safely."""
    doc: dict[str, Any] = copy.deepcopy(dict(stored))
    doc["review_date"] = chart["review_date"]
    patient = doc.setdefault("patient", {})
    for key in ("age_years", "sex", "body_mass_kg"):
        if key in chart.get("patient", {}):
            patient[key] = chart["patient"][key]
    if "goal" not in patient and "goal" in chart.get("patient", {}):
        patient["goal"] = chart["patient"]["goal"]
    condition = doc.setdefault("condition", {})
    seen = chart.get("condition", {})
    problems = []
    if seen.get("side") and condition.get("side") and seen["side"] != condition["side"]:
        problems.append(MappingProblem(
            "Condition", "Condition.bodySite",
            f"the chart says side {seen['side']}, calfrehab's record {condition['side']}: "
            "correct one of them"))
    for key in ("side", "onset_date", "muscle"):
        if key not in condition and key in seen:
            condition[key] = seen[key]
    surgeries = [d for d in (condition.get("surgery_date"), seen.get("surgery_date")) if d]
    if surgeries:
        condition["surgery_date"] = max(surgeries)
    flags = list(doc.get("red_flags") or [])
    flags += [f for f in chart.get("red_flags") or [] if f not in flags]
    doc["red_flags"] = flags
    if not doc.get("sessions") and chart.get("sessions"):
        doc["sessions"] = chart["sessions"]
    doc["assessments"] = _merge_assessments(doc.get("assessments") or [],
                                            chart.get("assessments") or [])
    if problems:
        raise FhirMappingError(source, problems)
    return doc


def _holds_programme(bundle: Any) -> bool:
    """Whether a chart holds calfrehab's CarePlan (a record calfrehab wrote
    there), read before any mapping: without one and without a stored case
    there is no training record, whatever else the chart says."""
    entries = bundle.get("entry") if isinstance(bundle, Mapping) else None
    for e in entries or []:
        resource = e.get("resource") if isinstance(e, Mapping) else None
        if isinstance(resource, Mapping) and resource.get("resourceType") == "CarePlan" \
                and codes.CAREPLAN_PROGRAM in str(resource.get("category")):
            return True
    return False


def _chart_rupture(bundle: Any) -> str | None:
    """The id of an active chart Condition that can only be an Achilles
    rupture (ICD-10 S86.0), or None."""
    table = chart_codes()
    entries = bundle.get("entry") if isinstance(bundle, Mapping) else None
    for e in entries or []:
        r = e.get("resource") if isinstance(e, Mapping) else None
        if not isinstance(r, Mapping) or r.get("resourceType") != "Condition":
            continue
        status = r.get("clinicalStatus")
        codings = status.get("coding") if isinstance(status, Mapping) else None
        states = {c.get("code") for c in codings or [] if isinstance(c, Mapping)}
        if states and not states & {"active", "recurrence", "relapse"}:
            continue
        concept = r.get("code")
        found = [(str(c.get("system") or ""), str(c.get("code") or ""))
                 for c in (concept.get("coding") or [] if isinstance(concept, Mapping) else [])
                 if isinstance(c, Mapping)]
        said = table.condition(found)
        if said is not None and said[0] == ["achilles_rupture"]:
            return f"Condition/{r.get('id')}"
    return None


def _refuse_unusual(case: Case, source: str, origin: Mapping[str, tuple[str, str]],
                    unusual: Callable[[Case], Iterable[tuple[str, str]]]) -> None:
    """A chart's value outside what a human calf does (3 x 150 heel raises,
    a heel-raise test far above published maxima) is refused, said of the
    resource and element it came from (clinical-basis.md §8): calfrehab's
    entry commands refuse it unless confirmed, and a record system's data
    carries no confirmation, so it gets no decision. ``unusual`` gives each
    such value as (case path, message); the plausible ranges are the entry
    layer's, above this one, so the caller passes it."""
    problems = []
    for full, message in unusual(case):
        path = full
        while path and path not in origin:
            cut = max(path.rfind("."), path.rfind("["))
            path = path[:cut] if cut > 0 else ""
        resource, element = origin.get(path, ("Bundle", ""))
        problems.append(MappingProblem(resource, element, message))
    if problems:
        raise FhirMappingError(source, problems)


def chart_case(bundle: Any, *, case_id: str, review_date: date,
               stored: Mapping[str, Any] | None, source: str = "prefetch",
               zone: tzinfo | None = None,
               unusual: Callable[[Case], Iterable[tuple[str, str]]] | None = None
               ) -> tuple[Case, dict[str, Any]]:
    """The case to decide: calfrehab's stored case (if any) merged with the
    chart, validated. Raises FhirMappingError (naming resources and
    elements; with ``unusual``, each value of the chart's training it
    names too), or NoRecord when there is nothing to decide."""
    if stored is None and not _holds_programme(bundle):
        raise NoRecord("no calf rehab record for this patient yet")
    kind = None
    if stored is not None:
        condition = stored.get("condition")
        kind = condition.get("kind") if isinstance(condition, Mapping) else None
    chart, origin = bundle_to_document(
        bundle, source=source, case_id=case_id, review_date=review_date,
        ignore_unrelated=True, partial=True, prefer_kind=kind, zone=zone)
    if stored is not None:
        document = merge_case(stored, chart, source)
        # The chart diagnoses an Achilles rupture that calfrehab's record
        # does not manage as one: a suspected rupture, which refers
        # (clinical-basis §5), never a tendinopathy progressed.
        if kind != "achilles_rupture" and _chart_rupture(bundle) is not None \
                and "suspected_rupture" not in document["red_flags"]:
            document["red_flags"].append("suspected_rupture")
    elif chart.get("program"):
        document = chart
    else:
        raise NoRecord("no calf rehab record for this patient yet")
    try:
        case = validate_document(document, source)
    except CaseValidationError as exc:
        if stored is not None:
            raise
        raise explain_case_errors(source, exc, origin) from None
    if stored is None and unusual is not None:
        # Only then is the training the chart's: with calfrehab's record it
        # is the record's, entered through the checks (or confirmed), and
        # the chart adds pain scores and a weight validated in range.
        _refuse_unusual(case, source, origin, unusual)
    return case, document


__all__ = ["NoRecord", "chart_case", "merge_case"]
