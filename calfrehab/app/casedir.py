"""The cases directory the app serves: one case file (``NAME.json``) per
patient, addressed in the app by ``NAME``.

Every read returns the file's bytes with their sha256: a form carries that
hash, and a write to a case whose bytes have changed since the form was
opened is refused (two clinicians on one patient). The list's summaries are
kept per file and read again only when the file's size, inode or
modification time moves, so a list of a thousand patients costs a
thousand ``stat`` calls once warm.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from calfrehab.engine import api

# A patient's address: a file name stem a URL can carry as it is. Anything
# else (a dot-dot, a slash, a space) is not a name here, so no request can
# reach outside the directory.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
SUFFIX = ".json"


class NoSuchCase(Exception):
    """A name that is not a case file of the directory (the app's own: the
    library's errors all live in engine/errors.py)."""


@dataclass(frozen=True)
class Snapshot:
    """One case file as read: bytes, their sha256, the document, and the
    validated case (None, with the errors, when the file does not validate)."""

    name: str
    path: Path
    sha256: str
    document: dict[str, Any] | None
    case: api.Case | None
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Summary:
    """What the patient list shows of a case file, without deciding it."""

    name: str
    case_id: str | None
    condition: str | None
    side: str | None
    goal: str | None
    review_date: str | None
    red_flags: tuple[str, ...]
    sessions: int
    assessments: int
    last_entry: str | None
    problem: str | None = None
    # The file's sessions and assessments as it holds them: whether anything
    # was entered since the decision a clinician acted on (api.entered_since)
    # decides which recorded decision the list shows.
    entries: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _summary(name: str, document: Any, problem: str | None) -> Summary:
    doc: dict[str, Any] = document if isinstance(document, dict) else {}
    condition = _dict(doc.get("condition"))
    patient = _dict(doc.get("patient"))
    sessions = _list(doc.get("sessions"))
    assessments = _list(doc.get("assessments"))
    dates = [str(e.get("date")) for e in [*sessions, *assessments]
             if isinstance(e, dict) and e.get("date")]
    flags = _list(doc.get("red_flags"))

    def text(value: Any) -> str | None:
        return value if isinstance(value, str) else None

    return Summary(
        name=name,
        case_id=text(doc.get("case_id")),
        condition=text(condition.get("kind")),
        side=text(condition.get("side")),
        goal=text(patient.get("goal")),
        review_date=text(doc.get("review_date")),
        red_flags=tuple(str(f) for f in flags),
        sessions=len(sessions),
        assessments=len(assessments),
        last_entry=max(dates) if dates else None,
        problem=problem,
        entries={"sessions": sessions, "assessments": assessments},
    )


class CaseDirectory:
    """The case files of one directory (not its subdirectories)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._summaries: dict[str, tuple[tuple[int, int, int], Summary]] = {}
        self._lock = threading.Lock()
        # One lock per case file: two writes from this app to one case are
        # taken in turn, so the second sees the first's bytes and is refused
        # as stale rather than overwriting it.
        self._write_locks: dict[str, threading.Lock] = {}

    def _entries(self) -> list[tuple[str, tuple[int, int, int]]]:
        """(name, (mtime, size, inode)) of each case file: one directory
        scan and one stat a file (symlinks are not followed, nor listed)."""
        out = []
        try:
            with os.scandir(self.root) as it:
                for entry in it:
                    stem, dot, ext = entry.name.rpartition(".")
                    if not dot or "." + ext != SUFFIX or not NAME.match(stem):
                        continue
                    if not entry.is_file(follow_symlinks=False):
                        continue
                    st = entry.stat(follow_symlinks=False)
                    out.append((stem, (st.st_mtime_ns, st.st_size, st.st_ino)))
        except OSError as exc:
            raise api.InputError(str(self.root), "cannot read the cases directory: "
                                 f"{exc.strerror}") from None
        return sorted(out, key=lambda item: item[0].lower())

    def names(self) -> list[str]:
        return [name for name, _ in self._entries()]

    def path_of(self, name: str) -> Path:
        if not NAME.match(name):
            raise NoSuchCase(f"no patient {name!r} in {self.root}")
        path = self.root / (name + SUFFIX)
        if not path.is_file() or path.is_symlink():
            raise NoSuchCase(f"no patient {name!r} in {self.root}")
        return path

    def new_path(self, name: str) -> Path:
        """Where a new case called ``name`` goes (not checked for existence:
        the interview refuses to write over a file)."""
        if not NAME.match(name):
            raise NoSuchCase(f"{name!r} cannot name a case file: use 1-100 of A-Z a-z 0-9 . _ -")
        return self.root / (name + SUFFIX)

    @contextlib.contextmanager
    def write_lock(self, name: str) -> Iterator[None]:
        """Hold a case file for a check-then-write: this app's own lock
        for the case (its requests in turn), then the library's lock on the
        file, the one every calfrehab write takes (the command line's too),
        so nothing changes the file between the check of its sha256 and the
        write."""
        with self._lock:
            lock = self._write_locks.setdefault(name, threading.Lock())
        with lock, api.case_lock(self.new_path(name)):
            yield

    def read(self, name: str) -> Snapshot:
        path = self.path_of(name)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise NoSuchCase(f"cannot read {path.name}: {exc.strerror}") from None
        sha = file_sha256(data)
        source = path.name
        try:
            document = api.parse_json(data.decode("utf-8-sig"), source)
        except (UnicodeDecodeError, api.CaseValidationError) as exc:
            return Snapshot(name, path, sha, None, None, [_message(exc)])
        if not isinstance(document, dict):
            return Snapshot(name, path, sha, None, None, [f"{source}: not a JSON object"])
        try:
            case = api.validate_document(document, source)
        except api.CaseValidationError as exc:
            return Snapshot(name, path, sha, document, None, _errors(exc))
        return Snapshot(name, path, sha, document, case)

    def sha256(self, name: str) -> str:
        return file_sha256(self.path_of(name).read_bytes())

    def summaries(self) -> list[Summary]:
        out = []
        for name, key in self._entries():
            cached = self._summaries.get(name)
            if cached is not None and cached[0] == key:
                out.append(cached[1])
                continue
            try:
                snap = self.read(name)
            except NoSuchCase:  # gone since the scan
                continue
            summary = _summary(name, snap.document,
                               snap.errors[0] if snap.errors else None)
            with self._lock:
                self._summaries[name] = (key, summary)
            out.append(summary)
        return out


def _errors(exc: api.CaseValidationError) -> list[str]:
    return [e.render() for e in exc.errors] or [str(exc)]


def _message(exc: Exception) -> str:
    if isinstance(exc, api.CaseValidationError):
        return "; ".join(_errors(exc))
    return "not UTF-8 text"
