"""Print a CDS Hooks patient-view request for a case file.

    python scripts/cds_example.py examples/runner-stuck-on-two-leg.json > hook.json

The request is shaped like the CDS Hooks 2.0 specification's example; its
prefetch holds the case as a record system's FHIR server would return it
(one searchset Bundle per prefetch key of GET /cds-services).

The service decides for the day of the call, so the case is first moved in
time (every date shifted by the same number of days) to make its review
today: the time-based rules then see the intervals the example was written
with, and the cards match the example's documented decision.
"""

from __future__ import annotations

import json
import sys
from datetime import date, timedelta
from typing import Any

from calfrehab.engine import api

DATE_KEYS = ("review_date", "date", "onset_date", "injury_date", "surgery_date")


def shifted(value: Any, days: int) -> Any:
    if isinstance(value, dict):
        return {k: (date.fromisoformat(v) + timedelta(days=days)).isoformat()
                if k in DATE_KEYS and isinstance(v, str) else shifted(v, days)
                for k, v in value.items()}
    if isinstance(value, list):
        return [shifted(v, days) for v in value]
    return value


def main(argv: list[str]) -> None:
    if len(argv) not in (2, 3):
        sys.exit(__doc__)
    with open(argv[1], encoding="utf-8") as fh:
        doc = json.load(fh)
    days = (api.today() - date.fromisoformat(doc["review_date"])).days
    case = api.validate_case(shifted(doc, days), argv[1])
    patient_id = argv[2] if len(argv) == 3 else "1288992"
    print(json.dumps(api.cds_example_request(case, patient_id), indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main(sys.argv)
