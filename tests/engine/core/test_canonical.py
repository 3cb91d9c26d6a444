"""The one canonical JSON and hashing, and the one clock."""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from helpers import REPO
from hypothesis import given
from hypothesis import strategies as st

from calfrehab.engine import canonical
from calfrehab.engine.canonical import (
    CanonicalJSONError,
    canonical_bytes,
    canonical_json,
    case_sha256,
    compact_json,
    sha256_hex,
)
from calfrehab.engine.clock import ClockError, checked_now, parse_stamp, utc_now, utc_stamp
from calfrehab.engine.errors import CalfrehabError

EXAMPLES = REPO / "examples"

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_canonical_bytes_parse_back_to_the_same_value(value: Any) -> None:
    assert json.loads(canonical_bytes(value)) == value


@given(st.dictionaries(st.text(), st.integers(), max_size=8))
def test_key_order_does_not_change_the_bytes(d: dict[str, int]) -> None:
    reordered = dict(reversed(list(d.items())))
    assert canonical_bytes(reordered) == canonical_bytes(d)


@given(json_values)
def test_the_form_recorded_hashes_were_taken_over_is_unchanged(value: Any) -> None:
    # Both former copies (casefile/validation.py and trail/audit.py) hashed
    # exactly this serialisation of finite values; a trail's recorded
    # case_sha256 and entry_hash values stay valid only while it holds.
    try:
        old = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        old_bytes = old.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: the old code crashed too
        with pytest.raises(CanonicalJSONError):
            canonical_bytes(value)
        return
    assert canonical_bytes(value) == old_bytes


def test_no_whitespace_and_unicode_kept_as_utf8() -> None:
    assert canonical_bytes({"b": [1, 2.5], "a": "Zoë"}) == '{"a":"Zoë","b":[1,2.5]}'.encode()
    assert canonical_json({"x": "\n\x01"}) == '{"x":"\\n\\u0001"}'


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, {"a": [math.nan]}])
def test_nan_and_infinity_are_refused(bad: object) -> None:
    with pytest.raises(CanonicalJSONError, match="no canonical JSON"):
        canonical_bytes(bad)


@pytest.mark.parametrize("bad", ["\ud800", {"k": b"bytes"}, {"s": {1, 2}}, {1: 1, "a": 2}])
def test_values_without_a_json_form_are_refused(bad: object) -> None:
    with pytest.raises(CanonicalJSONError):
        canonical_bytes(bad)


def test_a_value_that_contains_itself_is_refused_cleanly() -> None:
    # The encoder skips the circular-reference table (for speed); a value
    # that contains itself must still end as a domain error, not a crash.
    looped: dict[str, Any] = {"a": 1}
    looped["self"] = looped
    listed: list[Any] = [1]
    listed.append(listed)
    for bad in (looped, listed):
        with pytest.raises(CanonicalJSONError, match="nested too deeply"):
            canonical_bytes(bad)


def test_refusal_is_a_domain_error_and_a_value_error() -> None:
    with pytest.raises(CalfrehabError):
        canonical_json(math.nan)
    with pytest.raises(ValueError):
        canonical_json(math.nan)


def test_sha256_helpers() -> None:
    data = b"calfrehab"
    assert sha256_hex(data) == hashlib.sha256(data).hexdigest()
    doc = {"case_id": "X", "review_date": "2026-11-20"}
    assert case_sha256(doc) == hashlib.sha256(canonical_bytes(doc)).hexdigest()
    assert case_sha256({"review_date": "2026-11-20", "case_id": "X"}) == case_sha256(doc)


def test_example_cases_hash_as_the_decisions_say() -> None:
    # A decision names its case by case_sha256; deciding an example case
    # must name the hash of that very file's canonical form.
    from calfrehab.engine import api

    engine = api.prepare()
    paths = sorted(EXAMPLES.glob("*.json"))
    assert paths
    for path in paths:
        decided = api.decide_path(path, engine)
        doc = json.loads(path.read_text(encoding="utf-8"))
        assert decided.decision.case_sha256 == case_sha256(doc)


# ------------------------------------------------ orjson against the standard encoder

# Floats where the two spellings part (Python's exponent form below 1e-4
# and from 1e16; orjson's from other bounds) and the ends of the range.
EDGE_FLOATS = [
    0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, 1.7976931348623157e308,
    1e-4, 0.0001, 9.999999999999999e-05, 1e-05, 1.5e-05, 1e-07, 1e-10,
    1e15, 9999999999999998.0, 1e16, 1.0000000000000002e16, 1e21, 1e22, 123456789.125,
    0.1, 100.0, 2.5, 1 / 3,
]
edge_floats = st.sampled_from(EDGE_FLOATS) | st.sampled_from(EDGE_FLOATS).map(lambda f: -f)
all_floats = st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=True)
wide_ints = st.integers() | st.integers(min_value=-(2**70), max_value=2**70) | st.sampled_from(
    [2**63 - 1, -(2**63), 2**63, 2**64 - 1, 2**64, -(2**63) - 1])
# Text with the characters either encoder could escape differently.
tricky_text = st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(
    ["\x00", "\x1f", "\x7f", "\u2028", "\u2029", '"', "\\", "/", "\ufeff", "e", "1", ":"]))

documents = st.recursive(
    st.none() | st.booleans() | wide_ints | all_floats | edge_floats | tricky_text,
    lambda inner: st.lists(inner, max_size=5)
    | st.dictionaries(tricky_text, inner, max_size=5),
    max_leaves=30,
)


def _standard(value: Any) -> bytes:
    return canonical._standard_json(value).encode("utf-8")


@given(documents)
def test_orjson_bytes_are_the_standard_encoders_or_not_used(value: Any) -> None:
    fast = canonical._orjson_bytes(value)
    try:
        expected = _standard(value)
    except (CanonicalJSONError, UnicodeEncodeError):
        assert fast is None
        with pytest.raises(CanonicalJSONError):
            canonical_bytes(value)
        return
    if fast is not None:
        assert fast == expected
    assert canonical_bytes(value) == expected
    assert canonical_json(value) == expected.decode("utf-8")


@given(st.lists(edge_floats | all_floats, min_size=1, max_size=8))
def test_floats_at_the_edges_keep_pythons_spelling(values: list[float]) -> None:
    assert canonical_bytes({"v": values}) == _standard({"v": values})
    for v in values:
        assert canonical_bytes(v) == repr(v).encode()


@pytest.mark.parametrize("value", [
    2**64, -(2**63) - 1, {1: "int key"}, (1, 2), {"a": (1,)}, "\ud800",
])
def test_what_orjson_cannot_write_alike_goes_to_the_standard_encoder(value: Any) -> None:
    assert canonical._orjson_bytes(value) is None


@pytest.mark.parametrize("bad", [math.nan, [1.0, math.inf], {"a": {"b": -math.inf}}])
def test_orjson_does_not_let_nan_through_as_null(bad: object) -> None:
    assert canonical._orjson_bytes(bad) is None
    with pytest.raises(CanonicalJSONError):
        canonical_bytes(bad)


def test_cases_and_decisions_take_the_orjson_path_with_the_same_bytes() -> None:
    """The recorded hashes stay valid: generated cases and their decision
    documents give the standard encoder's bytes, and do take orjson's path
    (the speed-up is real, not a fallback every time)."""
    import importlib.util

    from calfrehab.engine import api

    spec = importlib.util.spec_from_file_location(
        "casegen", EXAMPLES.parent / "benchmarks" / "casegen.py")
    assert spec is not None and spec.loader is not None
    casegen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(casegen)
    engine = api.prepare()
    fast = 0
    docs = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(EXAMPLES.glob("*.json"))]
    docs += list(casegen.generate_cases(300, seed=5))
    for doc in docs:
        decision = api.decide_document(doc, engine).decision.model_dump(mode="json")
        for value in (doc, decision):
            assert canonical_bytes(value) == _standard(value)
            fast += canonical._orjson_bytes(value) is not None
    assert fast >= 0.95 * 2 * len(docs)


# ------------------------------------------------------------------ clock


def test_utc_stamp_is_fixed_width_and_round_trips() -> None:
    moment = datetime(2026, 11, 20, 14, 3, 12, tzinfo=UTC)
    text = utc_stamp(moment)
    assert text == "2026-11-20T14:03:12.000000Z"
    assert parse_stamp(text) == moment
    plus_two = timezone(timedelta(hours=2))
    assert utc_stamp(datetime(2026, 11, 21, 1, 30, tzinfo=plus_two)) == (
        "2026-11-20T23:30:00.000000Z"
    )


def test_naive_times_are_refused() -> None:
    with pytest.raises(ClockError):
        utc_stamp(datetime(2026, 11, 20))
    with pytest.raises(ClockError):
        checked_now(lambda: datetime(2026, 11, 20))
    assert checked_now(utc_now).tzinfo is not None


@pytest.mark.parametrize(
    "bad", ["2026-11-20", "2026-11-20T14:03:12Z", "2026-11-20 14:03:12.000000Z"]
)
def test_parse_stamp_takes_only_the_one_spelling(bad: str) -> None:
    with pytest.raises(ClockError):
        parse_stamp(bad)


@given(documents | st.dictionaries(tricky_text, documents, max_size=4))
def test_compact_json_is_the_standard_librarys_text(value: Any) -> None:
    """A batch's JSON Lines row: the standard library's text, key order
    kept, whichever encoder wrote it."""
    assert compact_json(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@pytest.mark.parametrize("value", [
    {"b": math.nan, "a": [math.inf, -math.inf]}, {1: "int key"}, (1, 2), 2**64, "\ud800",
    {"z": 1e-05, "y": 1e16},
])
def test_compact_json_keeps_what_only_the_standard_library_writes(value: Any) -> None:
    assert compact_json(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":"))
