"""Property tests of the case-file contract (shared/spec/case-format.md).

- Every generated valid case validates, via the document and via its JSON
  text, and round-trips: Case -> model_dump(mode="json") -> validate -> the
  same Case (with and without ``exclude_none``).
- Mutated documents (one defect) and garbage (any JSON, any text) never
  raise anything but CaseValidationError, whether handed to
  ``validate_document`` or to ``parse_json`` as text; a defect that is
  certainly wrong is reported at its path.

Profiles: see tests/conftest.py (``--hypothesis-profile thorough``).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import jsonschema
import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from strategies import (
    case_documents,
    format_path,
    garbage_documents,
    garbage_texts,
    json_values,
    mutated_documents,
)

from calfrehab.engine.casefile.model import Case, case_json_schema
from calfrehab.engine.casefile.validation import parse_json, validate_document, validate_text
from calfrehab.engine.errors import CaseValidationError

CASE_SCHEMA = jsonschema.Draft202012Validator(
    case_json_schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def _validate_or_reject(doc: Any) -> Case | None:
    """Validate; a CaseValidationError (with at least one located error) is
    a correct answer, anything else escapes and fails the property."""
    try:
        return validate_document(doc, "<generated>")
    except CaseValidationError as exc:
        assert exc.errors, "a CaseValidationError must name at least one problem"
        assert all(isinstance(e.path, str) for e in exc.errors)
        exc.render()  # the message a clinician sees must build
        return None


def _parse_then_validate(text: str) -> Case | None:
    try:
        doc = parse_json(text, "<generated>")
    except CaseValidationError as exc:
        assert exc.errors
        return None
    return _validate_or_reject(doc)


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    return True


# --------------------------------------------------------------- valid cases


@given(case_documents())
def test_generated_cases_validate(doc: dict[str, Any]) -> None:
    case = validate_document(doc)
    assert case.case_id == doc["case_id"]
    # the JSON text of the same document gives the same Case
    case2, raw = validate_text(json.dumps(doc))
    assert case2 == case
    assert raw == doc


@pytest.mark.parametrize("exclude_none", [False, True])
@given(doc=case_documents())
def test_round_trip(doc: dict[str, Any], exclude_none: bool) -> None:
    case = validate_document(doc)
    dumped = case.model_dump(mode="json", exclude_none=exclude_none)
    # the dump is plain JSON (no NaN / Infinity, no dates as objects)
    text = json.dumps(dumped, allow_nan=False)
    again = validate_document(dumped)
    assert again == case
    assert validate_text(text)[0] == case
    # and a second round is a fixed point
    assert again.model_dump(mode="json", exclude_none=exclude_none) == dumped


# ----------------------------------------------------- defects and garbage


@given(mutated_documents())
def test_mutated_documents_only_raise_validation_errors(
    mutated: tuple[dict[str, Any], str, tuple[Any, ...]],
) -> None:
    doc, _kind, _path = mutated
    _validate_or_reject(doc)
    _parse_then_validate(json.dumps(doc))


@given(mutated_documents(kinds=("unknown", "always_wrong")))
def test_certain_defects_are_reported_at_their_path(
    mutated: tuple[dict[str, Any], str, tuple[Any, ...]],
) -> None:
    """An unknown field, or a value wrong wherever it goes, is an error that
    names its path (spec: 'naming every offending field by its path')."""
    doc, kind, path = mutated
    event(f"mutation {kind}")
    with pytest.raises(CaseValidationError) as info:
        validate_document(doc)
    where = format_path(path)
    paths = [e.path for e in info.value.errors]
    assert any(_within(p, where) for p in paths), (where, paths)
    if kind == "unknown":
        unknown = [e for e in info.value.errors if e.path == where]
        assert unknown and "unknown field" in unknown[0].message


@given(mutated_documents(kinds=("drop", "wrong", "empty", "duplicate")))
def test_other_defects_are_reported_at_their_path_or_accepted_by_the_schema_too(
    mutated: tuple[dict[str, Any], str, tuple[Any, ...]],
) -> None:
    """A defect that may be harmless (an optional field dropped, null for an
    optional field, a list that may be empty, a session logged twice): when
    the program rejects it, an error names the changed path (or a field
    within it); when it accepts it, so does the published JSON Schema, which
    is never stricter than the program."""
    doc, kind, path = mutated
    where = format_path(path)
    try:
        validate_document(doc)
    except CaseValidationError as exc:
        event(f"{kind}: rejected")
        paths = [e.path for e in exc.errors]
        assert any(_within(p, where) for p in paths), (kind, where, paths)
    else:
        event(f"{kind}: accepted")
        assert not list(CASE_SCHEMA.iter_errors(doc)), (kind, where)


def _within(path: str, where: str) -> bool:
    return path == where or path.startswith((where + ".", where + "["))


@given(garbage_documents())
def test_garbage_documents_only_raise_validation_errors(doc: Any) -> None:
    _validate_or_reject(doc)
    _parse_then_validate(json.dumps(doc))


@given(garbage_texts())
def test_garbage_text_only_raises_validation_errors(text: str) -> None:
    _parse_then_validate(text)


@given(json_values())
def test_any_json_value_only_raises_validation_errors(value: Any) -> None:
    _validate_or_reject(value)
    _parse_then_validate(json.dumps(value))


@given(st.binary(max_size=64).map(lambda b: b.decode("utf-8", errors="surrogateescape")))
def test_undecodable_text_only_raises_validation_errors(text: str) -> None:
    _parse_then_validate(text)


# JSON numbers that are not finite doubles, or not JSON at all, in place of a
# number of a valid case's text.
_ODD_NUMBERS = st.sampled_from(["1e999", "-1e999", "NaN", "Infinity", "-Infinity", "1e308",
                                "0.0", "-0", "1E2", "2.5e-320"])


@st.composite
def _case_texts_with_odd_numbers(draw: st.DrawFn) -> str:
    text = json.dumps(draw(case_documents()))
    numbers = list(re.finditer(r"(?<=: )-?\d+(\.\d+)?(?=[,}\]])", text))
    if len(numbers) > 0 and draw(st.booleans()):
        m = draw(st.sampled_from(numbers))
        text = text[: m.start()] + draw(_ODD_NUMBERS) + text[m.end():]
    return text


@given(st.one_of(garbage_texts(), _case_texts_with_odd_numbers(), _case_texts_with_odd_numbers()))
def test_a_case_read_from_json_text_holds_only_finite_numbers(text: str) -> None:
    """Whatever JSON text validates gives a Case whose JSON dump is standard
    JSON (the contract's numbers are JSON numbers): garbage, and valid cases
    with one number spelt oddly (overflowing, NaN, Infinity, tiny)."""
    case = _parse_then_validate(text)
    event("validated" if case is not None else "rejected")
    if case is not None:
        assert _finite(case.model_dump(mode="python"))
        json.dumps(case.model_dump(mode="json"), allow_nan=False)


# ------------------------------------------------ counterexamples, kept


def _minimal_case(**program: Any) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "case_id": "PBT-1",
        "review_date": "2026-11-20",
        "patient": {"age_years": 30},
        "condition": {"kind": "none", "side": "left"},
        "program": program or {
            "straight_knee": {"exercise": "two_leg_heel_raise", "sets": 3, "reps": 15}},
    }


# Regression (found by hypothesis): json.loads' RecursionError escaped.
@pytest.mark.parametrize("text", ["[" * 100_000, '{"a":' * 100_000])
def test_deeply_nested_json_is_a_validation_error(text: str) -> None:
    with pytest.raises(CaseValidationError):
        parse_json(text, "<deep>")


# Regression (found by hypothesis): 1e999 parsed to inf and validated as
# load_kg, and `next --json` then printed Infinity, which is not JSON.
@pytest.mark.parametrize("where", ["program", "session"])
def test_overflowing_number_is_rejected(where: str) -> None:
    doc = _minimal_case()
    text = json.dumps(doc)
    if where == "program":
        text = text.replace('"sets": 3', '"load_kg": 1e999, "sets": 3', 1)
    else:
        text = text[:-1] + (', "sessions": [{"date": "2026-11-19", "exercises": [{"exercise": '
                            '"two_leg_heel_raise", "load_kg": 1e999, "sets_completed": [15], '
                            '"pain_during": 0}]}]}')
    with pytest.raises(CaseValidationError):
        validate_text(text)
