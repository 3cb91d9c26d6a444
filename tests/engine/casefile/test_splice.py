"""`calfrehab log` (and every edit through the case-file editor) writes a
hand-formatted case file back in its own form: what the edit did not change
keeps its bytes, only the new entry is written, in the file's indentation
(engine/casefile/splice.py). Before, the whole file was re-encoded: every
compact one-line object of the examples went onto many lines."""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from helpers import EXAMPLES
from hypothesis import given, settings
from hypothesis import strategies as st

from calfrehab.cli.main import cli
from calfrehab.engine import safeio
from calfrehab.engine.casefile import editor
from calfrehab.engine.casefile.editor import Layout, _encode, detect_layout, dumps
from calfrehab.engine.casefile.splice import rewrite

RUNNER = EXAMPLES / "runner-stuck-on-two-leg.json"


def _log(case: Path, *args: str) -> None:
    result = CliRunner().invoke(cli, ["log", str(case), "--no-input", *args])
    assert result.exit_code == 0, result.output


def _changes(before: str, after: str) -> tuple[list[str], list[str]]:
    diff = list(difflib.ndiff(before.splitlines(), after.splitlines()))
    return ([d[2:] for d in diff if d.startswith("- ")],
            [d[2:] for d in diff if d.startswith("+ ")])


def test_log_keeps_a_hand_formatted_file_as_it_was_but_for_the_new_session(
        tmp_path: Path) -> None:
    case = tmp_path / "case.json"
    case.write_bytes(RUNNER.read_bytes())
    before = case.read_text(encoding="utf-8")
    _log(case, "--date", "2026-11-20", "--straight-knee-done", "15,15,15",
         "--straight-knee-pain", "1")
    after = case.read_text(encoding="utf-8")
    removed, added = _changes(before, after)
    # One line changed, gaining the comma before the new session; the
    # rest of the diff is the new session, in the file's two-space indent.
    assert removed == ['     "pain_next_morning": 0, "morning_stiffness_min": 0}']
    assert added[0] == removed[0] + ","
    assert added[1:3] == ["    {", '      "date": "2026-11-20",']
    assert json.loads(after)["sessions"][-1]["date"] == "2026-11-20"

    # The next morning goes into that session, nothing else moves.
    _log(case, "--morning", "--morning-pain", "2", "--stiffness-min", "5")
    removed, added = _changes(after, case.read_text(encoding="utf-8"))
    assert removed == ["      ]"]
    assert added == ["      ],", '      "pain_next_morning": 2,',
                     '      "morning_stiffness_min": 5']


def test_a_four_space_file_with_its_own_key_order_keeps_both(tmp_path: Path) -> None:
    doc = json.loads(RUNNER.read_text(encoding="utf-8"))
    doc = {"case_id": doc.pop("case_id"), **doc}  # not the contract's order
    doc["patient"] = dict(reversed(list(doc["patient"].items())))
    case = tmp_path / "case.json"
    before = json.dumps(doc, indent=4) + "\n"
    case.write_text(before, encoding="utf-8")
    _log(case, "--date", "2026-11-21", "--straight-knee-done", "15,15,15",
         "--straight-knee-pain", "1")
    after = case.read_text(encoding="utf-8")
    removed, added = _changes(before, after)
    assert removed == ['    "review_date": "2026-11-20",']  # log moved it to the session
    assert '    "review_date": "2026-11-21",' in added
    assert all(line.startswith("    ") or line in ("},", "}") for line in added[1:])
    assert list(json.loads(after)) == list(doc)
    assert list(json.loads(after)["patient"]) == list(doc["patient"])


# ------------------------------------------------------------ rewrite itself

def _encoder(layout: Layout) -> Any:
    return lambda value, level: _encode(value, layout, level)


ENCODE = _encoder(Layout())


def test_an_unchanged_document_is_the_same_bytes() -> None:
    text = RUNNER.read_text(encoding="utf-8")
    assert rewrite(text, json.loads(text), ENCODE) == text


def test_a_member_added_to_a_one_line_object_stays_on_its_line() -> None:
    text = '{\n  "a": {"x": 1, "z": 3},\n  "b": [1, 2]\n}\n'
    doc = {"a": {"x": 1, "y": 2, "z": 3}, "b": [1, 2], "c": None}
    assert rewrite(text, doc, ENCODE) == (
        '{\n  "a": {"x": 1, "y": 2, "z": 3},\n  "b": [1, 2],\n  "c": null\n}\n')


def test_a_member_removed_encodes_that_object_anew_keeping_the_rest() -> None:
    text = '{"keep": {"p": [1,2]},   "drop": 1, "x": {"q":1}}'
    doc = {"keep": {"p": [1, 2]}, "x": {"q": 2}}
    out = rewrite(text, doc, ENCODE)
    assert out is not None and json.loads(out) == doc
    assert '{"p": [1,2]}' in out  # its text as it was


def test_duplicate_keys_are_not_spliced() -> None:
    assert rewrite('{"a": 1, "a": 2}', {"a": 3}, ENCODE) is None


_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 5),
                     st.text("abc", max_size=3))
_JSON = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text("abcd", max_size=2), inner,
                                                  max_size=4)), max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(before=st.dictionaries(st.text("abcd", max_size=2), _JSON, max_size=5),
       after=st.dictionaries(st.text("abcd", max_size=2), _JSON, max_size=5),
       indent=st.sampled_from([None, 2, 4]))
def test_the_text_written_always_reads_as_the_document(before: dict[str, Any],
                                                       after: dict[str, Any],
                                                       indent: int | None) -> None:
    text = json.dumps(before, indent=indent)
    out = rewrite(text, after, ENCODE)
    assert out is not None
    assert json.dumps(json.loads(out)) == json.dumps(after)
    assert rewrite(text, before, ENCODE) == text


# ------------------------------------------------- a file saved on Windows

def test_log_into_a_crlf_file_writes_crlf_lines_only(tmp_path: Path) -> None:
    # Before, the new session's lines had LF endings among the file's CRLF.
    case = tmp_path / "case.json"
    case.write_bytes(RUNNER.read_bytes().replace(b"\n", b"\r\n"))
    _log(case, "--date", "2026-11-20", "--straight-knee-done", "15,15,15",
         "--straight-knee-pain", "1")
    _log(case, "--morning", "--morning-pain", "2", "--stiffness-min", "5")
    data = case.read_bytes()
    assert data.count(b"\n") == data.count(b"\r\n") > 0
    assert b"\r\r" not in data
    document = json.loads(data)
    assert document["sessions"][-1]["date"] == "2026-11-20"
    assert document["sessions"][-1]["morning_stiffness_min"] == 5


def test_a_crlf_file_keeps_crlf_where_a_member_goes_on_a_new_line() -> None:
    text = '{\r\n  "a": 1\r\n}\r\n'
    layout = detect_layout(text)
    doc = {"a": 1, "b": {"c": [1, 2], "d": {"e": None}}}
    out = dumps(doc, layout, text)
    assert out.count("\n") == out.count("\r\n") and json.loads(out) == doc
    assert out.startswith('{\r\n  "a": 1,\r\n  "b": {\r\n')
    # Encoded whole (no text read), the file's line break still.
    assert dumps(doc, layout).count("\n") == dumps(doc, layout).count("\r\n")


def test_log_into_a_cr_only_file_writes_cr_lines_only(tmp_path: Path) -> None:
    # An old Mac's file (CR alone): before, the new session's lines had LF.
    case = tmp_path / "case.json"
    case.write_bytes(RUNNER.read_bytes().replace(b"\n", b"\r"))
    before = case.read_bytes()
    _log(case, "--date", "2026-11-20", "--straight-knee-done", "15,15,15",
         "--straight-knee-pain", "1")
    _log(case, "--morning", "--morning-pain", "2", "--stiffness-min", "5")
    data = case.read_bytes()
    assert b"\n" not in data and data.count(b"\r") > before.count(b"\r")
    document = json.loads(data)
    assert document["sessions"][-1]["date"] == "2026-11-20"
    assert document["sessions"][-1]["morning_stiffness_min"] == 5


def test_a_cr_only_file_keeps_cr_where_a_member_goes_on_a_new_line() -> None:
    text = '{\r  "a": 1\r}\r'
    layout = detect_layout(text)
    assert layout.newline == "\r" and layout.final_newline
    doc = {"a": 1, "b": {"c": [1, 2], "d": {"e": None}}}
    out = dumps(doc, layout, text)
    assert "\n" not in out and json.loads(out) == doc
    assert out.startswith('{\r  "a": 1,\r  "b": {\r')
    # Encoded whole (no text read), the file's line break still, and at its end.
    whole = dumps(doc, layout)
    assert "\n" not in whole and whole.endswith("}\r")


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_a_file_with_lists_one_value_a_line_keeps_that_whatever_its_line_break(
        newline: str) -> None:
    # An old Mac's file (CR alone) was taken for one with inline lists: its
    # broken lists were looked for after an LF only, so a list added went
    # inline ("b": ["z", "w"]) among lists written one value a line.
    text = '{\n  "a": [\n    "x",\n    "y"\n  ]\n}\n'.replace("\n", newline)
    layout = detect_layout(text)
    assert not layout.inline_scalar_lists and layout.newline == newline
    doc = {"a": ["x", "y"], "b": ["z", "w"]}
    out = dumps(doc, layout, text)
    assert out == ('{\n  "a": [\n    "x",\n    "y"\n  ],\n  "b": [\n    "z",\n    "w"\n'
                   '  ]\n}\n').replace("\n", newline)


def test_a_crlf_file_saved_where_text_mode_writes_crlf_stays_crlf(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Windows' text mode turns every "\n" written into "\r\n": the CRLF kept
    # from the file read became "\r\r\n", one more "\r" at every save.
    def windows_text_mode(path: Path, data: str, *, mode: int = 0o600,
                          newline: str | None = None) -> None:
        if newline is None:
            data = data.replace("\n", "\r\n")
        safeio.atomic_write_text(path, data, mode=mode, newline="")

    monkeypatch.setattr(editor, "atomic_write_text", windows_text_mode)
    case = tmp_path / "case.json"
    case.write_bytes(RUNNER.read_bytes().replace(b"\n", b"\r\n"))
    for day in ("2026-11-20", "2026-11-22"):
        _log(case, "--date", day, "--straight-knee-done", "15,15,15",
             "--straight-knee-pain", "1")
    data = case.read_bytes()
    assert b"\r\r" not in data and data.count(b"\n") == data.count(b"\r\n")

    # A new file is written with the platform's line break, as before.
    monkeypatch.setattr(os, "linesep", "\r\n")
    new = tmp_path / "new.json"
    editor.write_case_document(new, json.loads(RUNNER.read_bytes()))
    data = new.read_bytes()
    assert b"\r\r" not in data and data.count(b"\n") == data.count(b"\r\n") > 0
