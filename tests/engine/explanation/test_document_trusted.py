"""The decision document made from the engine's own values without
validating them (explanation/document.py's _made) is the document that
validating the same values makes: the same values of the same types, the
same JSON; and its validators and serializer are built only when asked
for."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import EXAMPLES, python_output, valid_example_case_files
from hypothesis import given
from strategies import case_documents

from calfrehab.engine import api
from calfrehab.engine.explanation.document import DecisionDocument
from calfrehab.engine.inference.driver import Reasoner
from calfrehab.engine.pipeline import decide_document


def _case_files() -> list[Path]:
    return valid_example_case_files()


def _assert_as_validated(doc: DecisionDocument) -> None:
    # Validating the trusted document's own values again: a value of
    # another type (20 where the float field makes 20.0, a tuple for a
    # list) would come back changed, and repr tells 20 from 20.0.
    again = DecisionDocument.model_validate(doc.model_dump())
    assert repr(doc.model_dump()) == repr(again.model_dump())
    assert doc.model_dump_json() == again.model_dump_json()
    # What `next --json` prints and the trail records (api.decision_json).
    assert json.dumps(doc.model_dump(mode="json"), indent=2, ensure_ascii=False) == json.dumps(
        again.model_dump(mode="json"), indent=2, ensure_ascii=False)
    for track, decision in doc.tracks.items():
        assert decision.__pydantic_fields_set__ == {
            "decision", "current", "next", "rules", "overruled"}, track


def test_there_are_cases_to_compare() -> None:
    assert len(_case_files()) >= 10


@pytest.mark.parametrize("path", _case_files(), ids=lambda p: p.name)
def test_the_examples_documents_are_as_validated(path: Path, reasoner: Reasoner) -> None:
    doc = json.loads(path.read_text(encoding="utf-8"))
    _assert_as_validated(decide_document(doc, reasoner).decision)


@given(case_documents())
def test_generated_cases_documents_are_as_validated(doc: dict[str, Any]) -> None:
    _assert_as_validated(decide_document(doc, api.prepare(None)).decision)


def test_a_text_next_builds_no_document_model(tmp_path: Path) -> None:
    # In a fresh process: `next` printing text with nothing recorded builds
    # none of the document's models (nor the proposed prescription's, nor
    # the merged reasons' of its "why"); --json builds them to dump.
    example = EXAMPLES / "plantar-single-leg-to-weighted.json"
    code = (
        "import json\nfrom calfrehab.cli.main import cli\n"
        "try:\n    cli({args!r}, prog_name='calfrehab')\n"
        "except SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "from calfrehab.engine.explanation import document as d, wording as w\n"
        "from calfrehab.engine.knowledge import ladder as l\n"
        "print('BUILT' + json.dumps(sorted(n for m in (d, w, l) for n, c in vars(m).items()\n"
        "    if isinstance(c, type) and c.__module__ == m.__name__\n"
        "    and (m is not l or n == 'NextPrescription')\n"  # (a cache miss builds the ladder)
        "    and getattr(c, '__pydantic_complete__', False))))\n"
    )
    text = python_output(code.format(args=["next", str(example), "--no-record"]))
    assert "PROGRESS" in text
    assert json.loads(text.rpartition("BUILT")[2]) == []
    dumped = python_output(code.format(args=["next", str(example), "--no-record", "--json"]))
    assert "DecisionDocument" in json.loads(dumped.rpartition("BUILT")[2])
