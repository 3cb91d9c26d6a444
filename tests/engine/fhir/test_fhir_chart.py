"""The chart merged with calfrehab's record (engine/fhir/chart.py) and the
standard code table (chart-codes.yaml): the more cautious value wins."""

from __future__ import annotations

import pytest

from calfrehab.engine.fhir import FhirMappingError
from calfrehab.engine.fhir.chart import merge_case
from calfrehab.engine.fhir.chartcodes import chart_codes

STORED = {
    "schema_version": 1, "case_id": "mrn-1", "review_date": "2026-11-01",
    "patient": {"age_years": 40, "body_mass_kg": 70, "goal": "running"},
    "condition": {"kind": "achilles_rupture", "side": "left", "surgery_date": "2026-10-01"},
    "red_flags": ["neurological_signs"],
    "program": {}, "sessions": [{"date": "2026-11-01", "exercises": []}],
    "assessments": [{"date": "2026-11-20", "pain_at_rest": 3}],
}


def chart(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "review_date": "2026-12-06", "patient": {"age_years": 41, "body_mass_kg": 72.5},
        "condition": {"kind": "achilles_rupture", "side": "left",
                      "surgery_date": "2026-10-11"},
        "red_flags": ["recent_fluoroquinolone"],
        "assessments": [{"date": "2026-11-20", "pain_at_rest": 6},
                        {"date": "2026-12-06", "pain_at_rest": 2}],
    }
    base.update(over)
    return base


def test_the_chart_gives_the_context_and_the_record_the_training() -> None:
    doc = merge_case(STORED, chart(), "prefetch")
    assert doc["review_date"] == "2026-12-06"
    assert doc["patient"] == {"age_years": 41, "body_mass_kg": 72.5, "goal": "running"}
    assert doc["sessions"] == STORED["sessions"] and doc["case_id"] == "mrn-1"


def test_the_more_cautious_value_wins() -> None:
    doc = merge_case(STORED, chart(), "prefetch")
    assert doc["condition"]["surgery_date"] == "2026-10-11"  # the later repair
    assert doc["red_flags"] == ["neurological_signs", "recent_fluoroquinolone"]
    by_date = {a["date"]: a for a in doc["assessments"]}
    assert by_date["2026-11-20"]["pain_at_rest"] == 6  # the higher score
    assert by_date["2026-12-06"]["pain_at_rest"] == 2
    assert STORED["assessments"] == [{"date": "2026-11-20", "pain_at_rest": 3}]  # unchanged


def test_a_side_the_chart_gives_differently_is_refused() -> None:
    with pytest.raises(FhirMappingError) as info:
        merge_case(STORED, chart(condition={"kind": "achilles_rupture", "side": "right"}),
                   "prefetch")
    assert "the chart says side right, calfrehab's record left" in str(info.value)


@pytest.mark.parametrize(("system", "code", "kinds", "side"), [
    ("icd10cm", "M76.62", ["achilles_insertional", "achilles_midportion"], "left"),
    ("icd10cm", "M7661", ["achilles_insertional", "achilles_midportion"], "right"),
    ("icd10cm", "M76.60", ["achilles_insertional", "achilles_midportion"], None),
    ("icd10cm", "S86.011A", ["achilles_rupture"], "right"),
    ("icd10cm", "S86.111A", ["calf_strain"], None),
    ("icd10cm", "M72.2", ["plantar_fasciopathy"], None),
    ("icd10", "M76.6", ["achilles_insertional", "achilles_midportion"], None),
    ("snomed", "11654001", ["achilles_insertional", "achilles_midportion"], None),
])
def test_condition_codes_read_kind_and_side(system: str, code: str, kinds: list[str],
                                           side: str | None) -> None:
    table = chart_codes()
    assert table.condition([(table.uri(system), code)]) == (kinds, side)


def test_codes_that_are_not_calf_conditions_or_disagree() -> None:
    table = chart_codes()
    assert table.condition([(table.uri("icd10cm"), "M76.5")]) is None  # patellar tendinitis
    both = [(table.uri("icd10cm"), "M72.2"), (table.uri("snomed"), "11654001")]
    assert table.condition(both) == ([], None)  # codings that disagree fit no kind


def test_fluoroquinolones_by_rxnorm_atc_or_name() -> None:
    table = chart_codes()
    assert table.is_fluoroquinolone([(table.uri("rxnorm"), "2551")], [])
    assert table.is_fluoroquinolone([(table.uri("atc"), "J01MA14")], [])
    assert table.is_fluoroquinolone([], ["Moxifloxacin 400 MG Oral Tablet"])
    assert not table.is_fluoroquinolone([(table.uri("atc"), "J01CA04")], ["amoxicillin"])


def test_mass_units_in_kilograms() -> None:
    table = chart_codes()
    assert table.kilograms(154, "[lb_av]") == pytest.approx(69.853, abs=1e-3)
    assert table.kilograms(61500, "g") == pytest.approx(61.5)
    assert table.kilograms(70, "cm") is None


def test_a_chart_patient_without_a_full_birth_date_keeps_the_records_age() -> None:
    import json
    from datetime import date

    from helpers import EXAMPLES

    from calfrehab.engine.fhir.chart import chart_case

    stored = json.loads((EXAMPLES / "achilles-midportion-two-leg-to-single-leg.json")
                        .read_text())
    review = date.fromisoformat(stored["review_date"])
    for birth in (None, "1984"):
        patient: dict[str, object] = {"resourceType": "Patient", "id": "p1", "gender": "male"}
        if birth:
            patient["birthDate"] = birth
        bundle = {"resourceType": "Bundle", "type": "collection",
                  "entry": [{"resource": patient}]}
        case, document = chart_case(bundle, case_id="p1", review_date=review, stored=stored)
        assert document["patient"]["age_years"] == stored["patient"]["age_years"]
        assert document["patient"]["sex"] == "male"
        assert case.case_id == stored["case_id"]
