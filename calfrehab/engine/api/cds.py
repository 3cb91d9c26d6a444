"""FHIR and CDS Hooks: for a record system, ``calfrehab fhir`` and the
service (``calfrehab serve``).

A case from a FHIR Bundle (:func:`case_from_fhir`, :func:`read_fhir_case`)
and back (:func:`case_to_fhir`); a decision as FHIR
(:func:`decision_to_fhir`); the ``cds_*`` functions the service builds its
discovery document, cards and feedback with.

The FHIR mapping (fhir.resources) loads only when one of these functions
runs: ``calfrehab next`` on a case file does not import it. The request
and card types below are plain pydantic models and dataclasses.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from calfrehab.engine.casefile.model import Case
from calfrehab.engine.errors import (
    CaseValidationError,
    CdsRequestError,
    FieldError,
)
from calfrehab.engine.fhir import CDS_SERVICE_ID
from calfrehab.engine.fhir.cdshooks import (
    Feedback,
    FeedbackRequest,
    HookRequest,
    IssuedCard,
    cds_cards,
    cds_discovery,
    cds_example_request,
    cds_feedback_reason,
    cds_missing_prefetch,
    cds_prefetch_bundle,
)
from calfrehab.engine.fhir.prefetch import (
    PrefetchGap,
    outcome_problem,
    prefetch_foreign,
    prefetch_gaps,
    prefetch_resources,
    resolve_prefetch_template,
    searchset_gap,
)
from calfrehab.engine.inference.driver import Reasoner
from calfrehab.engine.pipeline import Decided, decide

if TYPE_CHECKING:
    from calfrehab.engine.fhir.chart import chart_case, merge_case
    from calfrehab.engine.fhir.files import case_from_fhir, case_to_fhir, read_case_or_bundle
else:
    from calfrehab.engine.api._lazy import lazy_names

    # The FHIR mapping (fhir.resources) loads when one of these is first
    # used: the CDS Hooks models above do not need it.
    __getattr__, __dir__ = lazy_names(__name__, {
        "calfrehab.engine.fhir.chart": ("chart_case", "merge_case"),
        "calfrehab.engine.fhir.files": ("case_from_fhir", "case_to_fhir",
                                        "read_case_or_bundle"),
    })

__all__ = [
    "CDS_SERVICE_ID",
    "Feedback",
    "FeedbackRequest",
    "HookRequest",
    "IssuedCard",
    "PrefetchGap",
    "case_from_fhir",
    "case_reviewed_on",
    "case_to_fhir",
    "cds_cards",
    "cds_discovery",
    "cds_example_request",
    "cds_feedback_reason",
    "cds_feedback_schema",
    "cds_hook_schema",
    "cds_missing_prefetch",
    "cds_prefetch_bundle",
    "chart_case",
    "decide_any_path",
    "decide_fhir_path",
    "decision_to_fhir",
    "fhir_json",
    "merge_case",
    "outcome_problem",
    "parse_cds_feedback",
    "parse_cds_hook",
    "prefetch_foreign",
    "prefetch_gaps",
    "prefetch_resources",
    "read_case_or_bundle",
    "read_fhir_case",
    "resolve_prefetch_template",
    "searchset_gap",
    "utc_today",
]



def read_fhir_case(path: str | Path, *, ignore_unrelated: bool = False
                   ) -> tuple[Case, dict[str, Any]]:
    """A FHIR Bundle file (or ``-``) read into a case."""
    from calfrehab.engine.fhir.files import case_from_fhir, read_json

    data, source = read_json(path)
    return case_from_fhir(data, source, ignore_unrelated=ignore_unrelated)


def decide_fhir_path(path: str | Path, reasoner: Reasoner) -> Decided:
    """Decide straight from a FHIR Bundle file (``next --fhir``)."""
    case, document = read_fhir_case(path)
    return decide(case, document, reasoner)


def decide_any_path(path: str | Path, reasoner: Reasoner) -> Decided:
    """Decide a case file or a FHIR Bundle, told apart by content."""
    from calfrehab.engine.fhir.files import read_case_or_bundle as read

    case, document = read(path)
    return decide(case, document, reasoner)



def decision_to_fhir(decided: Decided, *, include_case: bool = True,
                     recorded: datetime | None = None,
                     acted_on: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A decision as a FHIR Bundle: GuidanceResponse, RequestGroup with the
    next exercise per track, DetectedIssue for a referral, Provenance with
    the rule base's version and sha256; the case's resources first unless
    ``include_case`` is false. ``acted_on``: what a clinician decided for
    the case (``case_state(..., acted_on=True)`` as JSON), named in the
    GuidanceResponse's notes."""
    from calfrehab.engine.fhir import files

    return files.decision_to_fhir(decided.case if include_case else None,
                                  decided.decision.model_dump(mode="json"),
                                  recorded or datetime.now(UTC), acted_on)




def fhir_json(bundle: dict[str, Any]) -> str:
    """A FHIR JSON document as calfrehab writes it (indented, UTF-8)."""
    return json.dumps(bundle, indent=2, ensure_ascii=False) + "\n"



def utc_today() -> date:
    """Today's date in UTC: the review date of a CDS Hooks call (the day
    the clinician opens the chart)."""
    from calfrehab.engine.clock import utc_now

    return utc_now().date()


def case_reviewed_on(document: dict[str, Any], review: date) -> dict[str, Any]:
    """A copy of a case document with every date shifted by the same number
    of days so that its review falls on ``review`` (worked CDS Hooks
    examples: the service decides for today). A document without a valid
    review_date is a CaseValidationError naming it (not a bare ValueError)."""
    from calfrehab.engine.casefile.timeshift import with_review_on

    try:
        return with_review_on(document, review)
    except ValueError as exc:
        got = document.get("review_date") if isinstance(document, dict) else None
        raise CaseValidationError("<case>", [FieldError(
            "review_date", str(exc), None if got is None else repr(got))]) from None


def _request_errors(exc: ValidationError) -> list[FieldError]:
    return [FieldError(".".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors()]


def parse_cds_hook(data: Any) -> HookRequest:
    """A patient-view hook request; CdsRequestError names each field that is
    wrong (path and message) if it is not one."""
    try:
        return HookRequest.model_validate(data)
    except ValidationError as exc:
        raise CdsRequestError("not a CDS Hooks patient-view request",
                              _request_errors(exc)) from None


def parse_cds_feedback(data: Any) -> FeedbackRequest:
    """A CDS Hooks feedback request; CdsRequestError names each field that
    is wrong if it is not one."""
    try:
        return FeedbackRequest.model_validate(data)
    except ValidationError as exc:
        raise CdsRequestError("not a CDS Hooks feedback request",
                              _request_errors(exc)) from None


def cds_hook_schema() -> dict[str, Any]:
    return HookRequest.model_json_schema()


def cds_feedback_schema() -> dict[str, Any]:
    return FeedbackRequest.model_json_schema()
