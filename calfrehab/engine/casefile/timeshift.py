"""Moving a case file in time: every date shifted by the same number of days.

A CDS Hooks call decides for the day the chart is opened, so a worked
example (docs/integration.md, ``scripts/cds_example.py``) and the server's
tests move an example case to make its review today. Shifting every date by
the same amount keeps every interval the time-based rules read (weeks since
injury, days since the last session, the rep-max calendar), so the decision
is the one the example documents.
"""

from __future__ import annotations

import copy
from datetime import date, timedelta
from typing import Any

__all__ = ["DATE_FIELDS", "shift_dates", "with_review_on"]

# Every date of the case format, as (container, key) paths: "" is the case
# itself, "sessions[]" each session. tests/engine/casefile/test_timeshift.py checks this
# against the model's own date fields.
DATE_FIELDS: tuple[tuple[str, str], ...] = (
    ("", "review_date"),
    ("condition", "onset_date"),
    ("condition", "injury_date"),
    ("condition", "surgery_date"),
    ("sessions[]", "date"),
    ("assessments[]", "date"),
)


def _containers(doc: dict[str, Any], where: str) -> list[dict[str, Any]]:
    if not where:
        return [doc]
    key, many = where.removesuffix("[]"), where.endswith("[]")
    value = doc.get(key)
    items = value if many and isinstance(value, list) else [value]
    return [item for item in items if isinstance(item, dict)]


def shift_dates(document: dict[str, Any], days: int) -> dict[str, Any]:
    """A copy of a case document with every date moved by ``days`` (key
    order kept; fields that are absent or not dates are left as they are)."""
    moved = copy.deepcopy(document)
    step = timedelta(days=days)
    for where, key in DATE_FIELDS:
        for container in _containers(moved, where):
            value = container.get(key)
            if isinstance(value, str):
                try:
                    container[key] = (date.fromisoformat(value) + step).isoformat()
                except ValueError:
                    continue  # not a date: validation names it, not this
    return moved


def with_review_on(document: dict[str, Any], review: date) -> dict[str, Any]:
    """A copy of a case document moved in time so that its review date is
    ``review``. Raises ValueError if the document has no valid review_date."""
    current = document.get("review_date")
    if not isinstance(current, str):
        raise ValueError("the case has no review_date to move from")
    return shift_dates(document, (review - date.fromisoformat(current)).days)
