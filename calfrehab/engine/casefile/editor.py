"""Change a case file without hand-editing JSON.

An edit reads the file as it is, changes the parsed document in place (so
every key keeps its place), checks the whole result against the case
format, and only then replaces the file, atomically, in the indentation the
file already had. An entry that would make the case invalid raises the
case-file error and leaves the file as it was.

Two writers never lose each other's entries (issue 27). Every write holds
an advisory lock on the case file (a ``.NAME.lock`` file beside it, through
``filelock``, which works on Windows too) and, still holding it, checks that
the file is byte for byte the one that was read (its sha256) before
replacing it. :func:`editing` holds the lock across the whole
read-modify-write, so a second writer waits for the first and then reads
what the first wrote; a writer that read without the lock (or a hand edit
in between) is refused with :class:`CaseFileChanged` instead of replacing
what it never saw. A file is never replaced by another patient's case (a
different ``case_id``), whatever the caller asks.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import re
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from filelock import FileLock, Timeout
from pydantic import BaseModel

from calfrehab.engine.casefile.model import Case, Session
from calfrehab.engine.casefile.splice import rewrite
from calfrehab.engine.casefile.validation import parse_json, validate_document
from calfrehab.engine.errors import CaseFileBusy as CaseFileBusy
from calfrehab.engine.errors import CaseFileChanged as CaseFileChanged
from calfrehab.engine.errors import CaseFileExists as CaseFileExists
from calfrehab.engine.errors import InputError, OutputError
from calfrehab.engine.errors import OtherPatientsCase as OtherPatientsCase
from calfrehab.engine.limits import max_input_bytes
from calfrehab.engine.safeio import NAME_MAX, atomic_write_text, read_input_bytes, short_name, shown
from calfrehab.engine.textsafe import for_terminal

# Case files hold health data: a new one is readable by its owner only.
NEW_FILE_MODE = 0o600
# The contract's order of the top-level keys, used where a key is added.
TOP_LEVEL_ORDER = tuple(Case.model_fields)
SESSION_ORDER = tuple(Session.model_fields)


# How long a writer waits for another to finish with the same case file:
# an entry takes milliseconds, so this is a stuck process, not a queue.
LOCK_TIMEOUT_S = 30.0


def lock_path(path: Path) -> Path:
    """The lock file that guards ``path``: hidden, beside it."""
    # Within the 255-byte name limit whatever the case file is called.
    return Path(path).with_name(f".{short_name(Path(path).name, NAME_MAX - 6)}.lock")


@contextlib.contextmanager
def case_lock(path: Path) -> Iterator[None]:
    """Hold the advisory lock of one case file. Re-entrant in one process
    (one lock object a path), so a save inside :func:`editing` does not
    wait for itself."""
    target = lock_path(path)
    try:
        lock = FileLock(target, timeout=LOCK_TIMEOUT_S, mode=NEW_FILE_MODE, is_singleton=True)
        with lock:
            yield
    except Timeout:
        raise CaseFileBusy(f"{shown(path)}: another calfrehab command has been writing it for "
                           f"over {LOCK_TIMEOUT_S:g} s (lock {shown(target)}); nothing was "
                           "written, try again") from None
    except OSError as exc:
        if target.exists() or exc.filename not in (str(target), os.fspath(target)):
            raise
        raise OutputError(f"{shown(path)}: cannot lock it for writing: cannot create "
                          f"{shown(target)} ({exc.strerror})") from None


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _on_disk(path: Path) -> bytes | None:
    """The file's bytes now, or None when there is none."""
    if not os.path.lexists(path):
        return None
    return read_input_bytes(path, cap_bytes=max_input_bytes())


def _case_id_in(data: bytes) -> object:
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        return None
    return document.get("case_id") if isinstance(document, dict) else None


@dataclass(frozen=True)
class Layout:
    """How a file is laid out: its indent unit (None for one line), whether
    it ends in a newline, whether lists of numbers sit on one line, and its
    line break (a file saved on Windows has CRLF: what is written into it
    must have them too, not LF lines mixed in)."""

    indent: str | None = "  "
    final_newline: bool = True
    inline_scalar_lists: bool = True
    newline: str = "\n"


# A scalar list broken over lines: "[", a line break (LF, CRLF or an old
# Mac's CR alone), a value.
_SCALAR_LIST_BROKEN = re.compile(r"\[\s*[\r\n]\s*[-\d\"tfn]")


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
        final_newline=text.endswith(("\n", "\r")),
        inline_scalar_lists=not _SCALAR_LIST_BROKEN.search(text),
        newline=_newline(text),
    )


def _newline(text: str) -> str:
    """The file's line break, as its first line ends: LF, CRLF (Windows) or
    CR alone (an old Mac)."""
    found = re.search(r"\r\n?|\n", text)
    return found.group() if found else "\n"


def dumps(document: Any, layout: Layout, original: str | None = None) -> str:
    """The document as JSON text in ``layout``, keys in their order; given
    the ``original`` text it was read from, every value the edit left alone
    keeps its bytes there (engine/casefile/splice.py)."""
    def encode(value: Any, level: int) -> str:
        if layout.indent is None:
            return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
        # A line break in JSON text is only ever between values (json.dumps
        # escapes one inside a string), so the file's own can replace it.
        return _encode(value, layout, level).replace("\n", layout.newline)

    if original is not None:
        kept = rewrite(original, document, encode)
        if kept is not None:
            return kept
    return encode(document, 0) + (layout.newline if layout.final_newline else "")


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
    # The sha256 of the bytes read (None: a new file, nothing was read).
    read_sha256: str | None = None
    # A new file may replace an existing one (the same patient's only).
    overwrite: bool = False
    # The text read (None: a new file): what the edit did not change is
    # written back as it was there.
    original: str | None = None

    def save(self) -> Case:
        """Check the edited document and write it, under the case file's
        lock, only if the file is still the one that was read; the file is
        untouched if any check fails. Returns the case written."""
        case = validate_document(self.document, str(self.path))
        text = dumps(self.document, self.layout, self.original)
        with case_lock(self.path):
            self._check_unchanged(case.case_id)
            # newline="": the text has the file's own line breaks; Windows'
            # text mode would turn a CRLF file's "\r\n" into "\r\r\n".
            atomic_write_text(self.path, text, newline="",
                              mode=self.mode if self.mode is not None else NEW_FILE_MODE)
        self.read_sha256 = sha256_of(text.encode("utf-8"))
        self.original = text
        return case

    def _check_unchanged(self, case_id: str) -> None:
        now = _on_disk(self.path)
        if self.read_sha256 is None:
            if now is None:
                return
            if not self.overwrite:
                raise CaseFileExists(f"{shown(self.path)} exists; choose another name (or "
                                     "--force to replace it)")
        elif now is None or sha256_of(now) != self.read_sha256:
            raise CaseFileChanged(
                f"{shown(self.path)} changed since it was read (another command or an edit "
                "wrote it in between); nothing was written: run the command again")
        there = _case_id_in(now)
        if isinstance(there, str) and there != case_id:
            # Never, not even with --force: a case file holds one patient.
            raise OtherPatientsCase(
                f"{shown(self.path)} holds case {for_terminal(there)}, not "
                f"{for_terminal(case_id)}: one patient's case file is never replaced by "
                "another's; write to another file")


def open_case(path: Path) -> CaseFile:
    """Read a case file for editing (it must be a JSON object)."""
    data = read_input_bytes(path, cap_bytes=max_input_bytes())
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(str(path), f"not UTF-8 text ({exc.reason})") from None
    document = parse_json(text, str(path))
    if not isinstance(document, dict):
        # validate_document words this the same way as for every other file.
        validate_document(document, str(path))
    mode = stat.S_IMODE(os.stat(path).st_mode)
    return CaseFile(Path(path), document, detect_layout(text), mode, sha256_of(data),
                    original=text)


@contextlib.contextmanager
def editing(path: Path) -> Iterator[CaseFile]:
    """Lock a case file, read it, and hand it over for changes; ``save()``
    inside the block writes it back (still checking it is unchanged). The
    lock is held until the block ends, so another writer waits and then
    reads what this one wrote."""
    with case_lock(path):
        yield open_case(path)


T = TypeVar("T")


def update_case(path: Path, edit: Callable[[dict[str, Any]], T]) -> tuple[Case, T]:
    """The one read-modify-write of an existing case file: lock it, read it
    (it must be valid: a broken file is fixed by hand first), apply
    ``edit`` to the parsed document in place, check the result, confirm the
    file is still the bytes that were read, and replace it atomically in
    its own layout and key order. ``edit`` may raise to write nothing.
    Returns the case written and what ``edit`` returned."""
    with editing(path) as cf:
        validate_document(cf.document, str(cf.path))
        result = edit(cf.document)
        case = cf.save()
    return case, result


def new_case_file(path: Path, document: dict[str, Any], *, overwrite: bool = False) -> CaseFile:
    """A case file to create at ``path``; ``save()`` refuses an existing
    file unless ``overwrite``, and another patient's file always."""
    if Path(path).exists() and not overwrite:
        raise CaseFileExists(f"{shown(path)} exists; choose another name (or --force to "
                             "replace it)")
    # The platform's line break, as the text mode wrote a new file before.
    return CaseFile(Path(path), document, Layout(newline=os.linesep), None, None, overwrite)


def write_case_document(path: Path, document: dict[str, Any], *, overwrite: bool = False,
                        ) -> Case:
    """Write a whole case document to ``path`` (an import's output): valid,
    atomic, under the lock; an existing file only with ``overwrite`` and
    only when it is the same patient's case."""
    return new_case_file(path, document, overwrite=overwrite).save()


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
