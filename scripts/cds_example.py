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

from calfrehab.engine import api


def main(argv: list[str]) -> None:
    if len(argv) not in (2, 3):
        sys.exit(__doc__)
    with open(argv[1], encoding="utf-8") as fh:
        doc = json.load(fh)
    case = api.validate_document(api.case_reviewed_on(doc, api.utc_today()), argv[1])
    patient_id = argv[2] if len(argv) == 3 else "1288992"
    print(json.dumps(api.cds_example_request(case, patient_id), indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main(sys.argv)
