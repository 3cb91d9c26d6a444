"""The published JSON Schemas, checked with a real JSON Schema validator.

Other programs read case files and decision documents through
``calfrehab schema`` (the case file) and ``decision_json_schema()`` (the
decision document, docs/decision-format.md), not through pydantic. So every
example and every generated case must validate against the case schema with
``jsonschema`` (Draft 2020-12, formats checked), a field-level defect must
be rejected by the schema as by the program, and every decision must
validate against the decision schema.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner
from helpers import EXAMPLES
from hypothesis import event, given
from strategies import case_documents, mutated_documents

from calfrehab.cli.main import cli
from calfrehab.engine import api
from calfrehab.engine.inference.driver import Reasoner

CASE_SCHEMA = api.case_json_schema()
DECISION_SCHEMA = api.decision_json_schema()
CASE_VALIDATOR = jsonschema.Draft202012Validator(
    CASE_SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
DECISION_VALIDATOR = jsonschema.Draft202012Validator(
    DECISION_SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)

VALID_FILES = sorted([*EXAMPLES.glob("*.json"), *(EXAMPLES / "batch").glob("*.json")])
JSONL_LINES = (EXAMPLES / "batch" / "clinic-week.jsonl").read_text(encoding="utf-8").splitlines()
# Invalid examples whose one error is a rule across fields, which a JSON
# Schema cannot state (the schema's description lists them); every other
# invalid example breaks the schema too.
CROSS_FIELD = {"assessment-after-review-date.json", "exercise-on-wrong-track.json",
               "rupture-without-injury-date.json"}


def schema_errors(validator: jsonschema.Draft202012Validator, doc: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path)) or '(document)'}: {e.message}"
            for e in validator.iter_errors(doc)]


def test_the_published_schemas_are_valid_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(CASE_SCHEMA)
    jsonschema.Draft202012Validator.check_schema(DECISION_SCHEMA)


def test_calfrehab_schema_prints_the_published_case_schema() -> None:
    result = CliRunner().invoke(cli, ["schema"])
    assert result.exit_code == 0
    assert json.loads(result.output) == CASE_SCHEMA


@pytest.mark.parametrize("path", VALID_FILES, ids=lambda p: p.name)
def test_valid_examples_validate_against_the_case_schema(path: Path) -> None:
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert schema_errors(CASE_VALIDATOR, doc) == []


@pytest.mark.parametrize("line", range(len(JSONL_LINES)))
def test_batch_lines_validate_against_the_case_schema(line: int) -> None:
    assert schema_errors(CASE_VALIDATOR, json.loads(JSONL_LINES[line])) == []


def test_shared_examples_validate_against_the_case_schema(shared_dir: Path) -> None:
    paths = sorted(p for p in shared_dir.glob("*.json") if p.name != "invalid-case.json")
    assert paths
    for path in paths:
        assert schema_errors(CASE_VALIDATOR, json.loads(path.read_text("utf-8"))) == [], path
    assert schema_errors(CASE_VALIDATOR,
                         json.loads((shared_dir / "invalid-case.json").read_text("utf-8")))


@pytest.mark.parametrize(
    "path", sorted(p for p in (EXAMPLES / "invalid").glob("*.json")
                   if p.name != "truncated-not-json.json"), ids=lambda p: p.name)
def test_invalid_examples_break_the_schema_unless_their_rule_spans_fields(path: Path) -> None:
    errors = schema_errors(CASE_VALIDATOR, json.loads(path.read_text(encoding="utf-8")))
    if path.name in CROSS_FIELD:
        assert errors == [], "a cross-field rule the schema cannot state"
    else:
        assert errors, "the program rejects this file; the published schema must too"


@given(case_documents())
def test_generated_cases_validate_against_the_case_schema(doc: dict[str, Any]) -> None:
    event(f"condition {doc['condition']['kind']}")
    assert schema_errors(CASE_VALIDATOR, doc) == []


@given(mutated_documents(kinds=("unknown", "always_wrong")))
def test_field_level_defects_break_the_case_schema(
    mutated: tuple[dict[str, Any], str, tuple[Any, ...]],
) -> None:
    """An unknown field, or a value wrong wherever it goes, is rejected by
    the schema as it is by the program."""
    doc, kind, _ = mutated
    event(f"mutation {kind}")
    assert schema_errors(CASE_VALIDATOR, doc)


@given(case_documents())
def test_decisions_validate_against_the_decision_schema(
    reasoner: Reasoner, doc: dict[str, Any],
) -> None:
    decided = api.decide_document(doc, reasoner)
    event(f"outcome {decided.decision.outcome}")
    dumped = json.loads(json.dumps(decided.decision.model_dump(mode="json"), allow_nan=False))
    assert schema_errors(DECISION_VALIDATOR, dumped) == []
