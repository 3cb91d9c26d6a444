"""Validation details a clinic's integrator meets: exact types, dates that
cannot be, byte-order marks, null."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import EXAMPLES

from calfrehab.engine.casefile.validation import read_case_file, validate_document
from calfrehab.engine.errors import CaseValidationError

BASE = json.loads((EXAMPLES / "rupture-operative-gate-counted-from-surgery.json").read_text())


def _errors(doc: dict[str, object]) -> dict[str, str]:
    with pytest.raises(CaseValidationError) as err:
        validate_document(doc)
    return {e.path: e.message for e in err.value.errors}


@pytest.mark.parametrize("value", [True, 1.0, "1", 2])
def test_schema_version_is_exactly_the_integer_1(value: object) -> None:
    errors = _errors({**BASE, "schema_version": value})
    assert "schema_version" in errors


def test_condition_dates_after_review_and_surgery_before_injury_are_errors() -> None:
    condition = dict(BASE["condition"], surgery_date="2026-01-01", injury_date="2026-12-31")
    errors = _errors({**BASE, "condition": condition})
    assert "is after review_date" in errors["condition.injury_date"]
    assert "before injury_date" in errors["condition.surgery_date"]


def test_messages_say_what_kind_of_value_was_given() -> None:
    patient = dict(BASE["patient"], age_years=30.5)
    errors = _errors({**BASE, "patient": patient, "review_date": "2026-02-30"})
    assert errors["patient.age_years"] == "expected a whole number, not a fraction"
    assert "not a calendar date" in errors["review_date"]


def test_null_for_a_defaulted_field_is_explained() -> None:
    errors = _errors({**BASE, "red_flags": None})
    assert "null is not allowed" in errors["red_flags"]


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(BASE).encode())
    case, _ = read_case_file(path)
    assert case.case_id == BASE["case_id"]
