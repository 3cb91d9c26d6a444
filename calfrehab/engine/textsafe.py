"""Text that came from a case file, a file name or a person, made safe to show.

Two edges need it:

- **a terminal** (:func:`for_terminal`): a JSON key, a clinician's name or an
  override reason may hold a newline (which can forge an ``ok`` line in
  error output), ESC sequences (ANSI colours, cursor moves, OSC-8 links),
  bidi overrides, or 10 MB of text. Every character that is not printable is
  shown as a visible escape (``\\n``, ``\\x1b``, ``\\u202e``) and the result is
  clipped, so what reaches the terminal is one line of bounded length.
- **a spreadsheet** (:func:`csv_cell`): a cell starting with ``=``, ``+``,
  ``-``, ``@``, tab or carriage return is read by Excel, LibreOffice and
  Google Sheets as a formula (CSV injection). Following the OWASP guidance
  (https://owasp.org/www-community/attacks/CSV_Injection) such a cell is
  prefixed with a single quote, which makes the spreadsheet show it as text;
  the csv module's quoting handles separators and quotes inside the cell.
  Numbers are left alone: ``-3`` written as a number is not a formula.

Both are pure functions of their input; neither is on the per-case hot path
unless something is shown.
"""

from __future__ import annotations

from typing import TypeVar

#: What a clipped text ends with.
ELLIPSIS = "…"

_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

# Leading characters a spreadsheet treats as the start of a formula (OWASP).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")

T = TypeVar("T")


def _escape(ch: str) -> str:
    short = _SHORT_ESCAPES.get(ch)
    if short is not None:
        return short
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def for_terminal(text: object, *, limit: int | None = 80) -> str:
    """``text`` as one line of printable characters, at most about ``limit``
    characters long (``None``: no clipping).

    Control characters (C0, DEL, C1, so ESC and every ANSI / OSC sequence
    it would start), newlines, line and paragraph separators, bidi and other
    format characters, lone surrogates (from undecodable command-line bytes)
    and unassigned code points are shown as Python-style escapes. A clipped
    text ends with an ellipsis; an escape is never cut in half.
    """
    s = text if isinstance(text, str) else str(text)
    if (limit is None or len(s) <= limit) and s.isprintable():
        return s  # the common case: nothing to do
    # Each source character yields at least one output character, so looking
    # at limit + 1 of them is enough to know whether to clip (a 10 MB key
    # costs no more than an 80-character one).
    head = s if limit is None else s[: limit + 1]
    pieces = [ch if ch == " " or ch.isprintable() else _escape(ch) for ch in head]
    whole = "".join(pieces)
    if limit is None or (len(head) == len(s) and len(whole) <= limit):
        return whole
    room = limit - len(ELLIPSIS)
    kept: list[str] = []
    used = 0
    for piece in pieces:
        if used + len(piece) > room:
            break
        kept.append(piece)
        used += len(piece)
    return "".join(kept) + ELLIPSIS


def for_terminal_lines(text: str) -> str:
    """A message of several lines made safe line by line: its own line
    breaks are kept, every other control character is escaped (values in it
    should already have gone through :func:`for_terminal`)."""
    return "\n".join(for_terminal(line, limit=None) for line in text.split("\n"))


def csv_cell(value: T) -> T | str:
    """A value safe to put in a CSV cell: a string starting with a formula
    trigger (``= + - @``, tab, CR) gets a leading single quote; anything
    else is returned unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value
