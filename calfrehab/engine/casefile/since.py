"""What a case file holds now that the copy a decision was made on did not:
the sessions and assessments entered (or changed) since, any removed, and
the other fields changed.

The one answer to "was anything entered since the decision?", for the
decision in force (engine/acceptance.case_state), the report's notes
(engine/report/recorded.py) and the app's "accepted as it was decided"
(app/views.py), which had each decided it their own way. Entries are
compared as the documents hold them (canonical JSON, whatever order the
file lists them in, a number by its value: 1.0 is 1), each entry counted
as often as it occurs: a session logged twice on one day is two sessions.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from typing import Any, NamedTuple

__all__ = ["Since", "entered_since"]

# What a review moves through without a new decision: the programme
# (`accept` writes it), the sessions and assessments (counted apart) and the
# review date (logging moves it).
_EXPECTED = frozenset({"program", "sessions", "assessments", "review_date"})


class Since(NamedTuple):
    """The difference between a recorded case and the file now."""

    sessions: list[str]  # dates of sessions entered or changed since, sorted
    assessments: list[str]  # dates of assessments entered or changed since, sorted
    removed: list[str]  # dates of recorded sessions or assessments no longer there
    fields: list[str]  # other top-level fields changed (not program nor review_date)
    review_date_moved: bool

    @property
    def entered(self) -> bool:
        """Whether a session or an assessment was entered, changed or
        removed: the decision no longer stands on the file's entries."""
        return bool(self.sessions or self.assessments or self.removed)

    @property
    def unchanged(self) -> bool:
        """Whether the file is the recorded case but for its programme."""
        return not (self.entered or self.fields or self.review_date_moved)


def _plain(value: Any) -> Any:
    """``value`` with every whole float as its int: a number equal in value
    is no change (a load of 20.0 retyped as 20, or written back by a tool
    that drops the ".0"). bool is left alone: JSON's true is not 1."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _entries(document: Mapping[str, Any], key: str) -> Counter[tuple[str, str]]:
    items = document.get(key)
    if not isinstance(items, list):
        return Counter()
    return Counter((str(i.get("date")) if isinstance(i, Mapping) else "",
                    json.dumps(_plain(i), sort_keys=True)) for i in items)


def entered_since(then: Mapping[str, Any], now: Mapping[str, Any]) -> Since:
    """What ``now`` (a case document) holds that ``then`` (the case document
    a decision was made on) did not."""
    added: dict[str, list[str]] = {}
    removed: list[str] = []
    for key in ("sessions", "assessments"):
        before, after = _entries(then, key), _entries(now, key)
        added[key] = sorted(d for d, _ in (after - before).elements())
        removed.extend(d for d, _ in (before - after).elements())
    fields = sorted(k for k in set(now) | set(then)
                    if k not in _EXPECTED and now.get(k) != then.get(k))
    return Since(sessions=added["sessions"], assessments=added["assessments"],
                 removed=sorted(removed), fields=fields,
                 review_date_moved=now.get("review_date") != then.get("review_date"))
