"""A decision document's JSON-mode data made directly (document_data, what a
batch worker outputs and records) is the model's dump, byte for byte: the
same keys in the same order, values of the same types, the same JSON and
canonical bytes; on every example, every case table's case and generated
cases (benchmarks/document_data.py checks 10,000 more). Its floats are
checked where they are put in, so its canonical bytes need no guard."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from helpers import EXAMPLES, REPO, valid_example_case_files
from hypothesis import given
from strategies import case_documents

from calfrehab.engine import api, pipeline
from calfrehab.engine.batch.rows import json_row
from calfrehab.engine.canonical import canonical_bytes, sha256_hex
from calfrehab.engine.casefile.validation import validate_document
from calfrehab.engine.errors import CaseValidationError, EngineError
from calfrehab.engine.explanation.document import (
    DecisionDocument,
    decision_json_schema,
    document_data,
)
from calfrehab.engine.inference.driver import Evaluation, Reasoner
from calfrehab.engine.knowledge.loader import default_rules_dir
from calfrehab.engine.ruletest.casetable import (
    _ClinicVariants,
    apply_changes,
    load_table,
    table_paths,
)

sys.path.insert(0, str(REPO / "benchmarks"))
import casegen
import document_data as oracle


def _case_files() -> list[Path]:
    return valid_example_case_files()


def _table_cases() -> list[tuple[str, str, dict[str, Any], dict[str, float | int]]]:
    out = []
    for path in table_paths(default_rules_dir()):
        table, _ = load_table(path)
        assert table is not None, path
        for case in table.cases:
            out.append((path.name, case.name, apply_changes(table.base, case), case.parameters))
    return out


def _same(reasoner: Reasoner, doc: dict[str, Any]) -> None:
    ev = reasoner.evaluate(validate_document(doc, "<test>"))
    assert oracle.difference(ev, sha256_hex(canonical_bytes(doc))) is None


def test_there_are_cases_to_compare() -> None:
    assert len(_case_files()) >= 10
    assert len(_table_cases()) >= 100


@pytest.mark.parametrize("path", _case_files(), ids=lambda p: p.name)
def test_the_examples_data_is_the_models_dump(path: Path, reasoner: Reasoner) -> None:
    _same(reasoner, json.loads(path.read_text(encoding="utf-8")))


def test_every_case_tables_case_data_is_the_models_dump(reasoner: Reasoner) -> None:
    variants = _ClinicVariants(default_rules_dir(), reasoner)
    compared = 0
    try:
        for file, name, doc, parameters in _table_cases():
            engine = variants.get(parameters)[0] if parameters else reasoner
            try:
                ev = engine.evaluate(validate_document(doc, f"{file}::{name}"))
            except CaseValidationError:
                continue  # a table's invalid case has no decision
            found = oracle.difference(ev, sha256_hex(canonical_bytes(doc)))
            assert found is None, f"{file}::{name}: {found}"
            compared += 1
    finally:
        variants.close()
    assert compared >= 100


@given(case_documents())
def test_generated_cases_data_is_the_models_dump(doc: dict[str, Any]) -> None:
    _same(api.prepare(None), doc)


def test_casegen_cases_data_is_the_models_dump(reasoner: Reasoner) -> None:
    count, bad = oracle.differences(reasoner, casegen.generate_cases(300, seed=5))
    assert (count, bad) == (300, [])


def _with_value(ev: Evaluation, value: Any) -> tuple[Evaluation, int]:
    """``ev`` with the value durable-rules matched for its first bound fact
    replaced (in the driver's hits, which both forms are made from), and
    that firing's index."""
    hits = list(ev.hits)
    i = next(i for i, (_key, aliases, _m) in enumerate(hits) if aliases)
    key, aliases, matched = hits[i]
    alias = aliases[0][0]
    hits[i] = (key, aliases, {**matched, alias: {**matched.get(alias, {}), "v": value}})
    return dataclasses.replace(ev, hits=hits), i


@pytest.mark.parametrize(
    ("value", "alike"),
    [(2.5, True), (0.0, True), (-1e-4, True), (1e-05, False), (1e16, False),
     (float("nan"), True), (float("inf"), True), (-float("inf"), True), (10**30, True),
     ((1, 2), False), (date(2026, 1, 2), False)],
    ids=repr,
)
def test_a_value_of_any_kind_is_written_as_the_dump_writes_it(
    reasoner: Reasoner, value: Any, alike: bool,
) -> None:
    # NaN and the infinities become None, as the dump writes them; a float
    # orjson spells otherwise (1e-05, 1e+16) or a value of another type
    # sends the document to the standard encoder; an integer beyond 64 bits
    # is left to it by orjson's refusal.
    doc = json.loads((EXAMPLES / "plantar-single-leg-to-weighted.json").read_text("utf-8"))
    ev, i = _with_value(reasoner.evaluate(validate_document(doc)), value)
    assert ev.firings[i].matched[0].value is value
    assert oracle.difference(ev, "0" * 64) is None
    made = document_data(ev, "0" * 64, "x")
    assert made.floats_alike is alike
    written = made.document["firings"][i]["matched"][0]["value"]
    if isinstance(value, float) and not math.isfinite(value):
        assert written is None


def test_a_small_load_goes_to_the_standard_encoder(reasoner: Reasoner) -> None:
    doc = json.loads((EXAMPLES / "plantar-single-leg-to-weighted.json").read_text("utf-8"))
    doc["program"]["straight_knee"]["load_kg"] = 1e-05
    ev = reasoner.evaluate(validate_document(doc))
    made = document_data(ev, "0" * 64, "x")
    assert made.document["tracks"]["straight_knee"]["current"]["load_kg"] == 1e-05
    assert not made.floats_alike
    assert b'"load_kg":1e-05' in made.canonical_bytes()
    assert oracle.difference(ev, "0" * 64) is None


def test_a_load_that_is_not_a_number_is_refused_where_it_is_put_in(
    reasoner: Reasoner,
) -> None:
    doc = json.loads((EXAMPLES / "plantar-single-leg-to-weighted.json").read_text("utf-8"))
    ev = reasoner.evaluate(validate_document(doc))
    track = ev.tracks["straight_knee"]
    assert track.current is not None
    bad = track.current.model_construct(**{**track.current.__dict__, "load_kg": math.nan})
    broken = dataclasses.replace(ev, tracks={**ev.tracks,
                                             "straight_knee": dataclasses.replace(track,
                                                                                  current=bad)})
    with pytest.raises(EngineError, match="current load that is not a number: nan"):
        document_data(broken, "0" * 64)


def test_decide_data_is_decide_dumped(reasoner: Reasoner) -> None:
    doc = json.loads((EXAMPLES / "plantar-single-leg-to-weighted.json").read_text("utf-8"))
    case = validate_document(doc)
    decided = pipeline.decide(case, doc, reasoner)
    made, case_bytes = pipeline.decide_data(case, doc, reasoner)
    assert case_bytes == decided.case_bytes == canonical_bytes(doc)
    dumped = decided.decision.model_dump(mode="json")
    assert made.document["decision_id"] != dumped["decision_id"]  # each its own
    made.document["decision_id"] = dumped["decision_id"]
    assert repr(made.document) == repr(dumped)


def test_the_model_stays_the_forms_definition(reasoner: Reasoner) -> None:
    # Every document made as data validates as a DecisionDocument, and the
    # schema is the model's.
    doc = json.loads((EXAMPLES / "plantar-single-leg-to-weighted.json").read_text("utf-8"))
    made = document_data(reasoner.evaluate(validate_document(doc)), "0" * 64)
    again = DecisionDocument.model_validate(made.document)
    assert again.model_dump(mode="json") == made.document
    assert decision_json_schema() == DecisionDocument.model_json_schema()


def test_a_row_orjson_refuses_is_written_as_before(reasoner: Reasoner) -> None:
    # A file name with a lone surrogate (a name that is not UTF-8 on disk):
    # orjson refuses it, and the row is what it always was.
    doc = json.loads((EXAMPLES / "plantar-single-leg-to-weighted.json").read_text("utf-8"))
    made = document_data(reasoner.evaluate(validate_document(doc)), "0" * 64, "x")
    assert made.floats_alike
    name = "bad\udcff.jsonl"
    assert json_row(made.document, name, None, checked=True) == json_row(
        made.document, name, None) == json.dumps(
        {**made.document, "source": {"file": name, "line": None}}, ensure_ascii=False,
        separators=(",", ":"))
