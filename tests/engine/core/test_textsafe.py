"""Text from a case or a person made safe for a terminal and a spreadsheet."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from calfrehab.engine.textsafe import ELLIPSIS, csv_cell, for_terminal


def test_plain_short_text_is_unchanged() -> None:
    assert for_terminal("Dr Ana Núñez") == "Dr Ana Núñez"


def test_a_newline_cannot_start_a_forged_line() -> None:
    shown = for_terminal("x\nok examples/a.json")
    assert "\n" not in shown
    assert shown == "x\\nok examples/a.json"


def test_ansi_and_osc8_sequences_never_reach_the_terminal() -> None:
    hostile = "\x1b[2J\x1b]8;;https://evil.example\x07click\x1b]8;;\x07\x9b31m"
    shown = for_terminal(hostile, limit=None)
    assert "\x1b" not in shown and "\x07" not in shown and "\x9b" not in shown
    assert shown.startswith("\\x1b[2J\\x1b]8;;https://evil.example\\x07click")


def test_bidi_overrides_and_surrogates_are_escaped() -> None:
    assert for_terminal("a\u202eb") == "a\\u202eb"
    # A non-UTF-8 byte on the command line arrives as a lone surrogate.
    assert for_terminal("caf\udce9") == "caf\\udce9"


def test_long_text_is_clipped_with_an_ellipsis() -> None:
    shown = for_terminal("k" * 10_000_000)
    assert len(shown) == 80 and shown.endswith(ELLIPSIS)


def test_an_escape_is_never_cut_in_half() -> None:
    shown = for_terminal("a" * 75 + "\x1b" * 10)
    assert shown == "a" * 75 + "\\x1b" + ELLIPSIS


@given(st.text(), st.integers(min_value=4, max_value=200))
def test_output_is_one_printable_line_within_the_limit(text: str, limit: int) -> None:
    shown = for_terminal(text, limit=limit)
    assert len(shown) <= limit
    assert all(ch == " " or ch.isprintable() for ch in shown)
    if len(text) <= limit and text.isprintable():
        assert shown == text


@given(st.text(max_size=50))
def test_unclipped_escaping_loses_nothing_printable(text: str) -> None:
    shown = for_terminal(text, limit=None)
    printable = "".join(ch for ch in text if ch == " " or ch.isprintable())
    # Every printable character survives, in order.
    it = iter(shown)
    assert all(ch in it for ch in printable)


@pytest.mark.parametrize("cell", ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "\tx", "\rx",
                                  "=HYPERLINK(\"http://x\")"])
def test_formula_cells_are_neutralised(cell: str) -> None:
    assert csv_cell(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["Dr Smith", "a=b", "", 3, -3, 2.5, None])
def test_other_cells_are_unchanged(cell: object) -> None:
    assert csv_cell(cell) == cell
