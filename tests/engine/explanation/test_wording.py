"""Words a clinician reads in `next` (and the report): one multiplication
sign, a unit on every dose, no raw field names, a reason shared by every
track said once, the full-trail hint naming the file, and NO_COLOR."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import EXAMPLES

from calfrehab.cli.main import cli
from calfrehab.cli.render import use_colour
from calfrehab.engine.explanation.wording import FIELD_WORDS, _author_list, short_citation

CASES = sorted(EXAMPLES.glob("*.json")) + sorted((EXAMPLES / "batch").glob("*.json"))
RAW_FIELD = re.compile(r"\b(" + "|".join(re.escape(f) for f in FIELD_WORDS if "_" in f) + r")\b")


def next_text(path: Path) -> str:
    result = CliRunner().invoke(cli, ["next", str(path), "--no-record"])
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.name)
def test_next_reads_as_a_clinician_writes(path: Path) -> None:
    text = next_text(path)
    assert not re.search(r"\d ?x ?\d", text), "a dose written with x, not ×"
    assert not RAW_FIELD.search(text), RAW_FIELD.search(text)
    assert f"Full trail: calfrehab explain {path}" in text
    # Every dose line has its unit: holds in s, running in min.
    for line in text.splitlines():
        if re.search(r"(now|next) +Isometric", line):
            assert re.search(r"\d+ × \d+ s\b", line), line
        if re.search(r"(now|next) +Return to running", line):
            assert re.search(r"\d+ × \d+ min\b", line), line


def test_a_reason_for_every_track_is_printed_once() -> None:
    text = next_text(EXAMPLES / "reactive-midportion-isometric-holds.json")
    blocks = text.split("\nWhy\n")
    assert len(blocks) == 2
    tracks_part, why_part = blocks
    for line in {ln.strip() for ln in why_part.splitlines() if ln.strip().startswith("- ")}:
        assert why_part.count(line) == 1, f"said twice: {line}"
    # A gate that holds every track is said once above the tracks, not per track.
    gates = re.findall(r"why +(Gate: [^\n]+)", tracks_part)
    assert len(gates) == len(set(gates)), gates


def test_no_color_and_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert use_colour(Terminal()) is True
    assert use_colour(io.StringIO()) is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert use_colour(Terminal()) is False


# The pattern short_citation's author-list test was written as, before it
# became string methods (wording._author_list): the two must agree.
AUTHOR_LIST = re.compile(r"^[A-Z][\w'’-]+ [A-Z]{1,3}[,.]")


@pytest.mark.parametrize("citation", [
    "Silbernagel KG, Thomeé R, Eriksson BI, Karlsson J. Continued sports activity. 2007.",
    "Alfredson H, Pietilä T, Jonsson P, Lorentzon R. Heavy-load eccentric calf muscle "
    "training. 1998.",
    "O'Neill S. Why are eccentric exercises effective? 2015.",
    "Smith-Jones A. A hyphenated surname. 2019.", "Lee ABCD, four initials. 2020.",
    "FDA. Drug safety communication. 2008.", "Rathleff MS, 2015", "M AB, one letter",
    "Silbernagel KG", "Silbernagel  KG, two spaces", "silbernagel KG, lower case",
    "Ångström KG, not ASCII", "Ng١ A, a digit of another script", "Ng_x A.",
])
def test_short_citation_names_an_author_list_by_its_surname(citation: str) -> None:
    author_list = bool(AUTHOR_LIST.match(citation))
    assert _author_list(citation) == author_list
    assert short_citation(citation).split(" ")[0] == (
        citation.split(" ")[0] if author_list else citation.split(".")[0].split(" ")[0])


def test_the_author_list_test_agrees_with_its_pattern_on_every_character() -> None:
    # Each code point of the basic plane (where the scripts are) as a
    # surname's letter, as the initials, and after them.
    for code in range(0x10000):
        ch = chr(code)
        for text in (f"A{ch} AB,", f"Ab {ch}.", f"Ab A{ch}", f"{ch}b A,"):
            assert _author_list(text) == bool(AUTHOR_LIST.match(text)), (hex(code), text)
