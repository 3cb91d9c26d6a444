"""Change a case file without hand-editing JSON.

An edit reads the file as it is, changes the parsed document in place (so
every key keeps its place), checks the whole result against the case
format, and only then replaces the file, atomically, in the indentation the
file already had. An entry that would make the case invalid raises the
case-file error and leaves the file as it was.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import stat
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from calfrehab.engine.casefile.model import Case, Session
from calfrehab.engine.casefile.validation import parse_json, validate_document
from calfrehab.engine.errors import CalfrehabError
from calfrehab.engine.limits import max_input_bytes
from calfrehab.engine.safeio import atomic_write_text, read_input_bytes

# Case files hold health data: a new one is readable by its owner only.
NEW_FILE_MODE = 0o600
# The contract's order of the top-level keys, used where a key is added.
TOP_LEVEL_ORDER = tuple(Case.model_fields)
SESSION_ORDER = tuple(Session.model_fields)


class CaseFileExists(CalfrehabError):
    """``new`` was asked to write over an existing file."""


@dataclass(frozen=True)
class Layout:
    """How a file is laid out: its indent unit (None for one line), whether
    it ends in a newline, and whether lists of numbers sit on one line."""

    indent: str | None = "  "
    final_newline: bool = True
    inline_scalar_lists: bool = True


_SCALAR_LIST_BROKEN = re.compile(r"\[\s*\n\s*[-\d\"tfn]")


def detect_layout(text: str) -> Layout:
    lines = text.splitlines()
    indent: str | None = None
    for prev, line in itertools.pairwise(lines):
        if prev.rstrip().endswith(("{", "[")) and line[:1] in (" ", "\t"):
            indent = line[: len(line) - len(line.lstrip(" \t"))]
            break
    if indent is None and len(lines) > 1:
        indent = "  "
    return Layout(
        indent=indent,
        final_newline=text.endswith("\n"),
        inline_scalar_lists=not _SCALAR_LIST_BROKEN.search(text),
    )


def dumps(document: Any, layout: Layout) -> str:
    """The document as JSON text in ``layout``, keys in their order."""
    if layout.indent is None:
        text = json.dumps(document, ensure_ascii=False, separators=(", ", ": "))
    else:
        text = _encode(document, layout, 0)
    return text + ("\n" if layout.final_newline else "")


def _scalar(value: Any) -> bool:
    return not isinstance(value, (dict, list))


def _encode(value: Any, layout: Layout, level: int) -> str:
    unit = layout.indent or ""
    if isinstance(value, dict) and value:
        inner = unit * (level + 1)
        items = [f"{inner}{json.dumps(k, ensure_ascii=False)}: {_encode(v, layout, level + 1)}"
                 for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + unit * level + "}"
    if isinstance(value, list) and value:
        if layout.inline_scalar_lists and all(_scalar(v) for v in value):
            return "[" + ", ".join(json.dumps(v, ensure_ascii=False) for v in value) + "]"
        inner = unit * (level + 1)
        items = [inner + _encode(v, layout, level + 1) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + unit * level + "]"
    return json.dumps(value, ensure_ascii=False)


def as_json(model: BaseModel) -> dict[str, Any]:
    """A model as case-file JSON: optional fields left out when unset, and
    whole numbers written as whole numbers (``0``, not ``0.0``)."""
    return _tidy(model.model_dump(mode="json", exclude_none=True))  # type: ignore[no-any-return]


def _tidy(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _tidy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_tidy(v) for v in value]
    return value


def put(obj: dict[str, Any], key: str, value: Any, order: tuple[str, ...]) -> None:
    """Set ``obj[key]``; a new key goes where the contract's ``order`` puts
    it among the keys already there, the others keep their places."""
    if key in obj or key not in order:
        obj[key] = value
        return
    rank = order.index(key)
    items = list(obj.items())
    at = len(items)
    for i, (k, _) in enumerate(items):
        if k in order and order.index(k) > rank:
            at = i
            break
    items.insert(at, (key, value))
    obj.clear()
    obj.update(items)


@dataclass
class CaseFile:
    """A case file open for editing: where it is, its parsed document and
    how it was laid out."""

    path: Path
    document: dict[str, Any]
    layout: Layout
    mode: int | None = None

    def save(self) -> Case:
        """Check the edited document and write it; the file is untouched if
        the check fails."""
        case = validate_document(self.document, str(self.path))
        atomic_write_text(self.path, dumps(self.document, self.layout),
                          mode=self.mode if self.mode is not None else NEW_FILE_MODE)
        return case


def open_case(path: Path) -> CaseFile:
    """Read a case file for editing (it must be a JSON object)."""
    data = read_input_bytes(path, cap_bytes=max_input_bytes())
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CalfrehabError(f"{path}: not UTF-8 text ({exc.reason})") from None
    document = parse_json(text, str(path))
    if not isinstance(document, dict):
        # validate_document words this the same way as for every other file.
        validate_document(document, str(path))
    mode = stat.S_IMODE(os.stat(path).st_mode)
    return CaseFile(Path(path), document, detect_layout(text), mode)


def new_case_file(path: Path, document: dict[str, Any], *, overwrite: bool = False) -> CaseFile:
    if Path(path).exists() and not overwrite:
        raise CaseFileExists(f"{path} exists; choose another name (or --force to replace it)")
    return CaseFile(Path(path), document, Layout(), None)


def _as_date(value: Any) -> date | None:
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def append_entry(document: dict[str, Any], key: str, entry: dict[str, Any]) -> str | None:
    """Append a session or assessment. A review date before the entry's
    date moves to it (a new entry means a later review); returns the old
    review date when it moved."""
    items = document.get(key)
    if not isinstance(items, list):
        items = []
        put(document, key, items, TOP_LEVEL_ORDER)
    items.append(entry)
    review = _as_date(document.get("review_date"))
    when = _as_date(entry.get("date"))
    if review is not None and when is not None and when > review:
        old = document["review_date"]
        document["review_date"] = when.isoformat()
        return str(old)
    return None


def last_session_index(document: dict[str, Any]) -> int | None:
    """The index of the latest session (by date; of two on one day, the
    later in the file), or None when there is none."""
    sessions = document.get("sessions")
    if not isinstance(sessions, list):
        return None
    best: tuple[date, int] | None = None
    for i, s in enumerate(sessions):
        when = _as_date(s.get("date")) if isinstance(s, dict) else None
        if when is not None and (best is None or when >= best[0]):
            best = (when, i)
    return None if best is None else best[1]


def set_session_fields(document: dict[str, Any], index: int, fields: dict[str, Any]) -> None:
    """Set next-morning fields on one session, in the contract's key order."""
    session = document["sessions"][index]
    for key, value in fields.items():
        if value is not None:
            put(session, key, value, SESSION_ORDER)
