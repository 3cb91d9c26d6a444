"""Is a CDS Hooks prefetch whole, and is it all one patient's?

clinical-basis.md §8: data that could not be read is not absent data, and a
case holds one patient. A record system's prefetch can fall short of both
without saying so loudly:

- a key sent as an ``OperationOutcome`` (CDS Hooks 2.0, "Prefetch": a
  client that failed to fetch a key may send the OperationOutcome in its
  place);
- a searchset holding an ``OperationOutcome`` entry (FHIR R4 search.html
  "Handling Errors": ``search.mode = outcome``) whose issues say the search
  failed or was cut short (an issue code ``incomplete``, ``too-costly``,
  ``throttled``, ``timeout``, or any ``error``/``fatal``);
- a searchset with a ``next`` link (FHIR R4 http.html "Paging": the page
  is one of several) or whose ``total`` (FHIR R4 Bundle.total: the number
  of ``match`` entries across all pages) is more than the matches it holds;
- a resource whose subject is another patient, or a Patient that is not
  ``context.patientId``.

Pure functions over the request's JSON: :func:`gaps` says what is
incomplete (and where the rest may be fetched), :func:`foreign` what
belongs to someone else. The service (calfrehab/server) fetches the rest
or answers 412; nothing here touches the network.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

# OperationOutcome issue codes that mean "what you got is not all there is"
# (FHIR R4 IssueType value set: incomplete, too-costly, throttled, timeout).
_CUT_SHORT: Final = frozenset({"incomplete", "too-costly", "throttled", "timeout", "too-long",
                               "exception", "transient", "lock-error", "no-store"})
_FAILED: Final = frozenset({"error", "fatal"})

# Elements that name whose record a resource is (FHIR R4: `subject` on
# Observation, Condition, Procedure, Flag, CarePlan, Goal, Encounter,
# MedicationStatement, MedicationRequest; `patient` on AllergyIntolerance,
# Immunization and others).
_SUBJECT_KEYS: Final = ("subject", "patient")


@dataclass(frozen=True)
class PrefetchGap:
    """One prefetch key that is not complete, and why.

    ``url`` is where the rest can be read: the ``next`` link to follow, or
    None when the whole search must be run again (a failed key)."""

    key: str
    reason: str
    url: str | None

    def render(self) -> str:
        return f"{self.key}: {self.reason}"


def resolve_prefetch_template(template: str, context: Mapping[str, Any]) -> str | None:
    """A prefetch template with its ``{{context.x}}`` tokens filled in, or
    None when a token has no value (CDS Hooks 2.0 "Prefetch tokens")."""
    missing = False

    def fill(match: re.Match[str]) -> str:
        nonlocal missing
        value = context.get(match.group(1))
        if not isinstance(value, str) or not value:
            missing = True
            return ""
        return value

    out = re.sub(r"\{\{\s*context\.(\w+)\s*\}\}", fill, template)
    return None if missing else out


def outcome_problem(outcome: Mapping[str, Any]) -> str | None:
    """What an OperationOutcome says went wrong, or None if it only
    informs (a warning that the search ignored an unknown parameter, say,
    still leaves the result whole)."""
    said: list[str] = []
    for issue in outcome.get("issue") or []:
        if not isinstance(issue, Mapping):
            continue
        severity, code = issue.get("severity"), issue.get("code")
        if severity in _FAILED or code in _CUT_SHORT:
            details = issue.get("details")
            text = (issue.get("diagnostics")
                    or (details.get("text") if isinstance(details, Mapping) else None)
                    or code or severity)
            said.append(f"{severity} {code}: {text}" if text not in (code, severity)
                        else f"{severity} {code}")
    return "; ".join(said) or None


def _link(bundle: Mapping[str, Any], relation: str) -> str | None:
    for link in bundle.get("link") or []:
        if isinstance(link, Mapping) and link.get("relation") == relation \
                and isinstance(link.get("url"), str):
            return str(link["url"])
    return None


def _matches(bundle: Mapping[str, Any]) -> int:
    # Bundle.total counts `match` entries only; an entry with no search
    # mode is a match (a searchset's default).
    n = 0
    for entry in bundle.get("entry") or []:
        if not isinstance(entry, Mapping):
            continue
        search = entry.get("search")
        mode = search.get("mode") if isinstance(search, Mapping) else None
        resource = entry.get("resource")
        if mode in (None, "match") and not (
                isinstance(resource, Mapping)
                and resource.get("resourceType") == "OperationOutcome"):
            n += 1
    return n


def searchset_gap(key: str, bundle: Mapping[str, Any]) -> PrefetchGap | None:
    """Whether one searchset (a prefetch key's, or a page fetched) shows
    that it is not the whole result."""
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        if isinstance(resource, Mapping) and resource.get("resourceType") == "OperationOutcome":
            problem = outcome_problem(resource)
            if problem is not None:
                return PrefetchGap(key, f"the search reported {problem}", None)
    next_url = _link(bundle, "next")
    if next_url is not None:
        return PrefetchGap(key, f"a page of a longer result (next link {next_url})", next_url)
    total, held = bundle.get("total"), _matches(bundle)
    if isinstance(total, int) and not isinstance(total, bool) and total > held:
        return PrefetchGap(key, f"total {total} but {held} held and no next link", None)
    return None


def prefetch_gaps(prefetch: Mapping[str, Any] | None, keys: tuple[str, ...]
                  ) -> list[PrefetchGap]:
    """Every prefetch key, of those the service reads, that is not whole."""
    out: list[PrefetchGap] = []
    for key in keys:
        value = (prefetch or {}).get(key)
        if not isinstance(value, Mapping):
            continue
        rtype = value.get("resourceType")
        if rtype == "OperationOutcome":
            problem = outcome_problem(value) or "an OperationOutcome instead of data"
            out.append(PrefetchGap(key, f"the record system could not fetch it ({problem})", None))
        elif rtype == "Bundle":
            gap = searchset_gap(key, value)
            if gap is not None:
                out.append(gap)
    return out


def _patient_of(reference: Any) -> str | None:
    """The patient id a reference names (``Patient/1``, an absolute URL
    ``…/Patient/1``, a versioned ``Patient/1/_history/2``), "" for a
    reference to something that is not a Patient, None when not a
    reference with a literal target."""
    if not isinstance(reference, Mapping):
        return None
    target = reference.get("reference")
    if not isinstance(target, str) or not target:
        return None
    parts = target.split("?")[0].rstrip("/").split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if len(parts) >= 2 and parts[-2] == "Patient":
        return parts[-1]
    return ""


def _label(resource: Mapping[str, Any]) -> str:
    rid = resource.get("id")
    return f"{resource.get('resourceType')}/{rid}" if isinstance(rid, str) \
        else str(resource.get("resourceType"))


def prefetch_resources(prefetch: Mapping[str, Any] | None, keys: tuple[str, ...]
              ) -> list[tuple[str, Mapping[str, Any]]]:
    """(key, resource) for every resource the prefetch holds under ``keys``."""
    out: list[tuple[str, Mapping[str, Any]]] = []
    for key in keys:
        value = (prefetch or {}).get(key)
        if not isinstance(value, Mapping):
            continue
        if value.get("resourceType") == "Bundle":
            for entry in value.get("entry") or []:
                resource = entry.get("resource") if isinstance(entry, Mapping) else None
                if isinstance(resource, Mapping):
                    out.append((key, resource))
        else:
            out.append((key, value))
    return out


def prefetch_foreign(prefetch: Mapping[str, Any] | None, keys: tuple[str, ...], patient_id: str
            ) -> list[str]:
    """What in the prefetch belongs to a patient other than ``patient_id``:
    a Patient resource with another id, or a resource whose subject (or
    patient) refers to another Patient. Each said as key, resource and
    whom it names."""
    out: list[str] = []
    for key, resource in prefetch_resources(prefetch, keys):
        rtype = resource.get("resourceType")
        if rtype == "OperationOutcome":
            continue
        if rtype == "Patient":
            if resource.get("id") != patient_id:
                out.append(f"{key}: {_label(resource)} is not the patient in context "
                           f"(context.patientId {patient_id})")
            continue
        for element in _SUBJECT_KEYS:
            who = _patient_of(resource.get(element))
            if who is not None and who != patient_id:
                named = resource[element]["reference"]
                out.append(f"{key}: {_label(resource)} {element} is {named}, not "
                           f"Patient/{patient_id}")
    return out


__all__ = ["PrefetchGap", "outcome_problem", "prefetch_foreign", "prefetch_gaps",
           "prefetch_resources", "resolve_prefetch_template", "searchset_gap"]
