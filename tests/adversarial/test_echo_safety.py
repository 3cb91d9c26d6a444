"""Whatever a case holds, its errors are one bounded, printable line each,
and every number out of its range is a field error naming the field
(issue 16 items 9, 11, 19)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from helpers import EXAMPLES, set_path
from hypothesis import given
from hypothesis import strategies as st

from calfrehab.engine.casefile.validation import parse_json, validate_document
from calfrehab.engine.errors import CaseValidationError

BASE: dict[str, Any] = json.loads(
    (EXAMPLES / "runner-stuck-on-two-leg.json").read_text(encoding="utf-8"))
BASE_WITH_TEST = set_path(BASE, "assessments", [
    {"date": "2026-11-18", "heel_raise_test": {"involved": 20, "uninvolved": 25}}])


def _errors_of(doc: Any) -> CaseValidationError:
    with pytest.raises(CaseValidationError) as exc:
        validate_document(parse_json(json.dumps(doc), "c.json"), "c.json")
    return exc.value


def _safe(rendered: str, errors: int) -> None:
    lines = rendered.split("\n")
    assert len(lines) == errors + 1  # a header and one line an error, never more
    for line in lines:
        assert all(ch == " " or ch.isprintable() for ch in line), line
        assert len(line) < 600, len(line)


KNOWN_PATIENT_FIELDS = ("age_years", "body_mass_kg", "sex", "goal")


@given(key=st.text(min_size=1, max_size=300).filter(lambda k: k not in KNOWN_PATIENT_FIELDS),
       value=st.text(max_size=300))
def test_an_unknown_key_renders_as_one_safe_line(key: str, value: str) -> None:
    doc = copy.deepcopy(BASE)
    doc["patient"][key] = value
    exc = _errors_of(doc)
    _safe(exc.render(), len(exc.errors))


@given(value=st.text(max_size=2000))
def test_a_bad_string_value_renders_as_one_safe_line(value: str) -> None:
    doc = set_path(BASE, "case_id", "\n" + value)  # never a valid id
    exc = _errors_of(doc)
    _safe(exc.render(), len(exc.errors))
    assert exc.errors[0].path == "case_id"


NUMBER_FIELDS = [
    "patient.age_years",
    "patient.body_mass_kg",
    "program.straight_knee.load_kg",
    "program.straight_knee.sets",
    "program.straight_knee.reps",
    "sessions[0].exercises[0].sets_completed[0]",
    "sessions[0].exercises[0].pain_during",
    "sessions[0].pain_next_morning",
    "sessions[0].morning_stiffness_min",
    "assessments[0].heel_raise_test.involved",
    "assessments[0].heel_raise_test.uninvolved",
]


@pytest.mark.parametrize("path", NUMBER_FIELDS)
@pytest.mark.parametrize("digits", [5, 16, 400, 5000])
def test_a_huge_number_is_a_field_error_naming_its_field(path: str, digits: int) -> None:
    marker = "@@HUGE@@"
    text = json.dumps(set_path(BASE_WITH_TEST, path, marker)).replace(
        json.dumps(marker), "9" * digits)
    with pytest.raises(CaseValidationError) as exc:
        validate_document(parse_json(text, "c.json"), "c.json")
    (error,) = exc.value.errors
    assert error.path == path
    assert "not int" not in error.message
    assert "expected" in error.message
    _safe(exc.value.render(), 1)


@pytest.mark.parametrize("when", ["0001-01-01", "1899-12-31", "2101-01-01", "9999-12-31"])
def test_a_date_out_of_range_is_a_field_error(when: str) -> None:
    exc = _errors_of(set_path(BASE, "sessions[0].date", when))
    (error,) = exc.errors
    assert error.path == "sessions[0].date"
    assert "expected a date from 1900-01-01 to 2100-12-31" in error.message


def test_two_byte_order_marks_are_refused_and_one_is_not() -> None:
    text = json.dumps(BASE)
    parse_json("\ufeff" + text, "c.json")
    with pytest.raises(CaseValidationError, match="two byte-order marks"):
        parse_json("\ufeff\ufeff" + text, "c.json")
