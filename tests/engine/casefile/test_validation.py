"""Validation details a clinic's integrator meets: exact types, dates that
cannot be, byte-order marks, null."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from helpers import EXAMPLES
from hypothesis import given
from hypothesis import strategies as st

from calfrehab.engine.canonical import canonical_bytes
from calfrehab.engine.casefile import validation
from calfrehab.engine.casefile.validation import (
    parse_json,
    parse_json_canonical,
    read_case_file,
    validate_document,
)
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


# ------------------------------------------- the orjson parse, against the standard one

json_scalars = (st.none() | st.booleans() | st.integers()
                | st.sampled_from([2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**19, -(10**25)])
                | st.floats(allow_nan=False, allow_infinity=False)
                | st.sampled_from([0.0, -0.0, 1e-05, 1e16, 5e-324, 1.7976931348623157e308])
                | st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(
                    ['"', "\\", ":", "\x00", "\u2028", "\ufeff"])))
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(alphabet=st.sampled_from('ab:"\\\u00e9'), max_size=3), inner,
                      max_size=4),
    max_leaves=20,
)


def _standard_parse(text: str) -> tuple[str, str]:
    try:
        return ("ok", repr(validation._loads(text.removeprefix("\ufeff"))))
    except (ValueError, RecursionError) as exc:
        return ("error", type(exc).__name__)


def _fast_parse(text: str) -> tuple[str, str]:
    try:
        return ("ok", repr(parse_json(text, "x")))
    except CaseValidationError:
        return ("error", "...")


def _duplicate_a_key(text: str, data: st.DataObject) -> str:
    """The text with one member of one object written twice (a key given
    twice, possibly with another value), if it has an object member."""
    spots = [i for i, c in enumerate(text) if c == "{"]
    if not spots:
        return text
    at = data.draw(st.sampled_from(spots))
    key = json.dumps(data.draw(st.sampled_from(["a", ":", "a:b", '"'])))
    value = data.draw(st.sampled_from(['1', '"x:y"', '{"b":2}', '[]']))
    first, rest = text[:at + 1], text[at + 1:]
    sep = "" if rest.startswith("}") else ","
    return f"{first}{key}:{value},{key} : 0{sep}{rest}"


@given(json_values, st.booleans(), st.data())
def test_the_fast_parse_returns_what_the_standard_parse_returns(
        value: object, ascii_only: bool, data: st.DataObject) -> None:
    """orjson's parse is taken only when it is the standard parse's value
    (types included: 1 and 1.0, 2**64 and 1.8e19): the same value, and the
    same refusal of a key given twice, wherever and whatever its value."""
    text = json.dumps(value, ensure_ascii=ascii_only,
                      separators=data.draw(st.sampled_from([(",", ":"), (", ", ": ")])))
    if data.draw(st.booleans()):
        text = _duplicate_a_key(text, data)
    expected = _standard_parse(text)
    got = _fast_parse(text)
    assert (got[0], got[1] if got[0] == "ok" else "...") == (
        expected[0], expected[1] if expected[0] == "ok" else "...")
    if expected[0] == "ok":
        doc, raw = parse_json_canonical(text, "x")
        assert repr(doc) == expected[1]
        if raw is not None:
            assert raw == canonical_bytes(doc)


@pytest.mark.parametrize("text", [
    '{"a": 1, "a": 1}', '{"a": {"b": 1, "b": 2}}', '[{"x": "1:2"}, {"y": 1, "y": "3:4"}]',
    '{"a": 1, "\\u0061": 2}', '{"a\\u003a": 1, "a:": 2}', '{"a" : 1, "a":1}',
])
def test_a_key_given_twice_is_refused_on_any_path(text: str) -> None:
    with pytest.raises(CaseValidationError, match="appears twice"):
        parse_json(text, "x")
    with pytest.raises(CaseValidationError, match="appears twice"):
        parse_json_canonical(text, "x")


def test_a_long_integer_keeps_its_exact_value() -> None:
    """orjson reads an integer beyond 64 bits as a float; the parse keeps
    the standard parse's exact integer, so the field is named as out of
    range, not as a fraction."""
    doc, _ = parse_json_canonical('{"n": 123456789012345678901234567890}', "x")
    assert doc == {"n": 123456789012345678901234567890}
    assert type(doc["n"]) is int


@pytest.mark.parametrize("text", ['{"case_id": ', '{"a": 1, "a": 2}', "\ufeff\ufeff{}",
                                  '{"n": 12345678901234567890123}'])
def test_a_text_orjson_does_not_take_is_tried_by_it_once(
    text: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The error path (and a wide integer) goes to the standard parser once,
    # without orjson trying the same text a second time.
    tries: list[str] = []
    real = validation._fast_parse

    def counting(t: str) -> object:
        tries.append(t)
        return real(t)

    monkeypatch.setattr(validation, "_fast_parse", counting)
    for parse in (validation.parse_json_canonical, validation.parse_json):
        tries.clear()
        with contextlib.suppress(CaseValidationError):
            parse(text, "x")
        assert len(tries) <= 1, parse.__name__
