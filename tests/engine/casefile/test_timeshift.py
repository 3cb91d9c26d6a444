"""Moving a case in time keeps every interval the rules read, so the
decision is the same; and the list of date fields is the model's."""

from __future__ import annotations

import json
import re
import types
import typing
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from helpers import REPO, shared_examples
from pydantic import BaseModel

from calfrehab.engine import api
from calfrehab.engine.casefile import model
from calfrehab.engine.casefile.timeshift import DATE_FIELDS, shift_dates, with_review_on

EXAMPLES = REPO / "examples"


def _date_fields(cls: type[BaseModel], where: str = "") -> set[tuple[str, str]]:
    """Every (container, key) of the model whose type is a case date."""
    found: set[tuple[str, str]] = set()
    for name, info in cls.model_fields.items():
        ann = info.annotation
        optional = typing.get_origin(ann) in (typing.Union, types.UnionType)
        args = [a for a in typing.get_args(ann) if a is not type(None)] if optional else [ann]
        for arg in args:
            if typing.get_origin(arg) is typing.Annotated:
                arg = typing.get_args(arg)[0]
            inner = typing.get_args(arg)[0] if typing.get_origin(arg) is list else arg
            container = f"{name}[]" if typing.get_origin(arg) is list else name
            if inner is date:
                found.add((where, name))
            elif isinstance(inner, type) and issubclass(inner, BaseModel) and not where:
                found |= _date_fields(inner, container)
    return found


def test_the_date_fields_are_the_models() -> None:
    assert set(DATE_FIELDS) == _date_fields(model.Case)


def _cases() -> list[Path]:
    return sorted(EXAMPLES.glob("*.json")) + sorted(
        p for p in shared_examples().glob("*.json") if p.name != "invalid-case.json")


@pytest.fixture(scope="module")
def engine() -> api.Reasoner:
    return api.prepare(None)


@pytest.mark.parametrize("path", _cases(), ids=lambda p: p.name)
def test_a_case_moved_in_time_gets_the_same_decision(path: Path, engine: api.Reasoner) -> None:
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    moved = with_review_on(doc, date(2031, 5, 17))
    assert moved["review_date"] == "2031-05-17"
    assert list(moved) == list(doc)  # key order kept
    assert doc == json.loads(path.read_text(encoding="utf-8"))  # the input untouched
    days = (date(2031, 5, 17) - date.fromisoformat(doc["review_date"])).days
    before = api.decision_json(api.decide_document(doc, engine))
    after = json.loads(api.decision_json(api.decide_document(moved, engine)))
    # The same decision, every date in it (a gate's opening date) moved too.
    expected = json.loads(re.sub(
        r"\b(\d{4}-\d{2}-\d{2})\b",
        lambda m: (date.fromisoformat(m.group(1)) + timedelta(days=days)).isoformat(), before))
    for varying in ("decision_id", "case_sha256"):
        expected.pop(varying), after.pop(varying)
    assert after == expected


def test_every_date_moves_by_the_same_days() -> None:
    doc = {"review_date": "2026-03-01", "condition": {"injury_date": "2026-02-27"},
           "sessions": [{"date": "2026-02-28"}, {"date": "not a date"}], "assessments": [],
           "patient": {"note_date": "2026-01-01"}}
    moved = shift_dates(doc, 2)
    assert moved["review_date"] == "2026-03-03"
    assert moved["condition"]["injury_date"] == "2026-03-01"
    assert moved["sessions"] == [{"date": "2026-03-02"}, {"date": "not a date"}]
    assert moved["patient"] == {"note_date": "2026-01-01"}  # not a case-format date


def test_a_case_without_a_review_date_cannot_be_moved() -> None:
    with pytest.raises(ValueError, match="review_date"):
        with_review_on({"case_id": "x"}, date(2026, 1, 1))
