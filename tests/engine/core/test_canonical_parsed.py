"""canonical_bytes_parsed: the canonical bytes of parsed JSON without the
round-trip guard, byte for byte the standard encoder's."""

from __future__ import annotations

import importlib.util
import json
from typing import Any

import pytest
from helpers import REPO
from hypothesis import given
from hypothesis import strategies as st

from calfrehab.engine import canonical, pipeline
from calfrehab.engine.canonical import canonical_bytes, canonical_bytes_parsed
from calfrehab.engine.casefile.validation import parse_json, validate_document

ROOT = REPO

# Parsed JSON with finite numbers: what the function is promised. Floats at
# the edges where orjson and Python spell them apart, integers past 64 bits
# (orjson refuses them), text with the characters either could escape.
EDGE_FLOATS = [0.0, -0.0, 5e-324, 1.7976931348623157e308, 1e-4, 9.999999999999999e-05,
               1e-05, 1e-07, 1e15, 1e16, 1e21, 1e22, 0.1, 2.5, 1 / 3]
numbers = (st.integers() | st.sampled_from([2**63 - 1, 2**63, 2**64, -(2**63) - 1])
           | st.floats(allow_nan=False, allow_infinity=False)
           | st.sampled_from(EDGE_FLOATS).flatmap(lambda f: st.sampled_from([f, -f])))
# Strings that look like orjson's float spellings only take the slower path.
text = st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(
    ["\x00", "\x1f", "\u2028", '"', "\\", "e", "1", ":", "-", "0", "."])) | st.sampled_from(
    ["0.0000", "1e-05", ":1e16", "[2e-9"])
parsed_json = st.recursive(
    st.none() | st.booleans() | numbers | text,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(text, inner, max_size=5),
    max_leaves=30,
)


def _standard(value: Any) -> bytes:
    return canonical._standard_json(value).encode("utf-8")


@given(parsed_json)
def test_parsed_json_gets_the_standard_encoders_bytes(value: Any) -> None:
    assert canonical_bytes_parsed(value) == _standard(value) == canonical_bytes(value)


def test_a_lone_surrogate_is_refused_as_by_canonical_bytes() -> None:
    value = parse_json('{"a": "\\ud800"}', "x")
    with pytest.raises(canonical.CanonicalJSONError):
        canonical_bytes(value)
    with pytest.raises(canonical.CanonicalJSONError):
        canonical_bytes_parsed(value)


def _casegen() -> Any:
    spec = importlib.util.spec_from_file_location("casegen", ROOT / "benchmarks" / "casegen.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_case_documents_hash_as_before_on_the_parsed_path() -> None:
    """The examples and generated cases, read as the batch reads them: the
    parsed path gives the bytes (so the case_sha256) the guarded path gives,
    and decide(parsed=True) names the same hash."""
    texts = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "examples").glob("*.json"))]
    texts += [json.dumps(d) for d in _casegen().generate_cases(200, seed=11)]
    engine = pipeline.prepare()
    for i, text in enumerate(texts):
        doc = parse_json(text, f"case {i}")
        case = validate_document(doc)
        assert canonical_bytes_parsed(doc) == canonical_bytes(doc) == _standard(doc)
        fast = pipeline.decide(case, doc, engine, parsed=True)
        slow = pipeline.decide(case, doc, engine)
        assert fast.case_bytes == slow.case_bytes
        assert fast.decision.case_sha256 == slow.decision.case_sha256
