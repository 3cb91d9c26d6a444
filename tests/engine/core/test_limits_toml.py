"""limits.toml read without tomllib (engine/limits.py's plain_toml): the
same values tomllib reads, for the shipped file and for any text the plain
reader takes; any other text is left to tomllib."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import calfrehab.engine.limits as limits
from calfrehab.engine.limits import plain_toml

SHIPPED = Path(limits.__file__).with_name("limits.toml")


def test_the_shipped_file_reads_as_tomllib_reads_it() -> None:
    text = SHIPPED.read_text(encoding="utf-8")
    plain = plain_toml(text)
    assert plain is not None  # the shipped file takes the fast way
    assert plain == tomllib.loads(text)
    assert limits._shipped() == plain


@pytest.mark.parametrize("text", [
    "a = 012\n",  # a leading zero: TOML refuses it
    "a = 1\na = 2\n",  # a key twice: refused
    "a = 1 # why\n",  # a trailing comment: valid, left to tomllib
    'a = "1"\n', "a = 1.5\n", "a = -1\n", "a = 0x10\n", "a = 1__0\n", "a = 10_\n",
    "[t]\na = 1\n", "a.b = 1\n", '"a" = 1\n', "a = 1\u2028b = 2\n",
])
def test_anything_else_is_left_to_tomllib(text: str) -> None:
    assert plain_toml(text) is None


_KEY = st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,8}", fullmatch=True)
_LINE = st.one_of(
    st.just(""), st.just("   "), st.text(max_size=20).map(lambda s: "#" + s.replace("\n", " ")),
    st.tuples(_KEY, st.sampled_from(["=", " = ", "\t=\t", "= "]),
              st.from_regex(r"0|[1-9](_?[0-9]){0,12}|0[0-9]+|[0-9]+_", fullmatch=True))
    .map("".join),
    st.text(max_size=12),
)


@given(st.lists(_LINE, max_size=8), st.sampled_from(["\n", "\r\n"]))
def test_what_the_plain_reader_takes_tomllib_reads_alike(lines: list[str], newline: str) -> None:
    # The invariant: whenever plain_toml answers, tomllib gives the same.
    text = newline.join(lines)
    plain = plain_toml(text)
    if plain is not None:
        assert plain == tomllib.loads(text)
