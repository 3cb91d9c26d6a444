"""A batch's inputs: which files, which cases, in which order.

Case files are found by their ``.json`` suffix in any case (``C.JSON`` is
a case file too: a red-flag case once went undecided because of a capital
suffix). Whatever a directory holds that is not taken is listed in
:attr:`Discovered.skipped`, so a batch can say what it did not read.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal, NamedTuple

from calfrehab.engine.errors import BatchError, InputError
from calfrehab.engine.errors import NoCaseFilesError as NoCaseFilesError
from calfrehab.engine.limits import max_input_bytes
from calfrehab.engine.safeio import open_regular

__all__ = [
    "CASE_SUFFIXES",
    "JSONL_SUFFIXES",
    "Bad",
    "Discovered",
    "InputFile",
    "Item",
    "NoCaseFilesError",
    "count_cases",
    "discover",
    "iter_items",
]

CASE_SUFFIXES = (".json",)
JSONL_SUFFIXES = (".jsonl", ".ndjson")


@dataclass(frozen=True)
class InputFile:
    path: Path
    kind: Literal["json", "jsonl"]

    @property
    def name(self) -> str:
        return str(self.path)


@dataclass
class Discovered:
    """The input files in order, and what the directories held that is not
    a case file (``skipped``: paths, sorted within each directory)."""

    files: list[InputFile] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)


class Item(NamedTuple):
    """One case to decide: a whole file (``data`` None: the worker reads
    it) or one line of a JSON Lines file (``data``: its bytes); ``seq`` is
    its place in the input order."""

    seq: int
    file: str
    line: int | None
    data: bytes | None


class Bad(NamedTuple):
    """A case that could not be decided, for the errors report."""

    seq: int
    file: str
    line: int | None
    kind: str  # unreadable / not_json / invalid / engine
    message: str
    case_id: str | None
    errors: list[dict[str, object]]

    def report(self) -> dict[str, object]:
        return {
            "file": self.file, "line": self.line, "case_id": self.case_id,
            "kind": self.kind, "message": self.message, "errors": self.errors,
        }


def is_case_file_name(name: str) -> bool:
    return name.lower().endswith(CASE_SUFFIXES)


def discover(inputs: Sequence[str | os.PathLike[str]]) -> Discovered:
    """The input files, in the order given; a directory contributes its
    case files (``*.json``, any case) sorted by name, and lists the rest as
    skipped. A file named on the command line is read whatever its name
    (``.jsonl`` / ``.ndjson``: one case a line). Raises
    :class:`NoCaseFilesError` when there is no input file at all."""
    found = Discovered()
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            with os.scandir(path) as entries:
                children = sorted(entries, key=lambda e: e.name)
            for child in children:
                if is_case_file_name(child.name) and child.is_file():
                    found.files.append(InputFile(path / child.name, "json"))
                else:
                    found.skipped.append(path / child.name)
        elif path.exists():
            kind: Literal["json", "jsonl"] = (
                "jsonl" if path.suffix.lower() in JSONL_SUFFIXES else "json"
            )
            found.files.append(InputFile(path, kind))
        else:
            raise BatchError(f"input {raw} does not exist")
    # A file skipped in a directory but named on its own as well is read.
    named = {f.path for f in found.files}
    found.skipped = [p for p in found.skipped if p not in named]
    if not found.files:
        where = ", ".join(str(p) for p in inputs) or "no input given"
        raise NoCaseFilesError(
            f"no case file found in {where} (a case file's name ends in .json; "
            "a JSON Lines file must be named on the command line)")
    return found


def count_cases(files: Sequence[InputFile]) -> int:
    """How many cases the inputs hold (a JSON Lines file: its non-blank
    lines; an unreadable one counts as one, its error)."""
    total = 0
    for f in files:
        if f.kind == "json":
            total += 1
            continue
        try:
            with open_regular(f.path) as fh:
                total += sum(1 for line in capped_lines(fh, max_input_bytes()) if line.strip())
        except (OSError, InputError):
            total += 1
    return total


# What capped_lines yields for a line over the cap (non-blank, never JSON).
TOO_LONG = b"\0too long\0"


def capped_lines(fh: IO[bytes], cap: int) -> Iterator[bytes]:
    """The lines of ``fh``, none longer than ``cap`` bytes: an over-long
    line (a 2 GB file with no newline) is skipped past without being held
    in memory, and :data:`TOO_LONG` is yielded in its place."""
    while True:
        raw = fh.readline(cap + 1)
        if not raw:
            return
        if len(raw) > cap and not raw.endswith(b"\n"):
            while True:
                rest = fh.readline(cap + 1)
                if not rest or rest.endswith(b"\n"):
                    break
            yield TOO_LONG
            continue
        yield raw


def iter_items(files: Sequence[InputFile], start: int = 0) -> Iterator[Item | Bad]:
    """Every case of the inputs, lazily, numbered in input order from
    ``start``. A JSON Lines file that cannot be opened yields its error."""
    index = start
    for f in files:
        if f.kind == "json":
            yield Item(index, f.name, None, None)
            index += 1
            continue
        try:
            # Only a regular file, opened without blocking: a FIFO or a
            # device given as a JSON Lines file is an error, not a hang.
            fh = open_regular(f.path)
        except InputError as exc:
            yield Bad(index, f.name, None, "unreadable", exc.reason, None, [])
            index += 1
            continue
        cap = max_input_bytes()
        with fh:
            for lineno, raw in enumerate(capped_lines(fh, cap), start=1):
                if raw is TOO_LONG:
                    yield Bad(index, f.name, lineno, "unreadable",
                              f"line larger than the input size cap of {cap} bytes "
                              "(set CALFREHAB_MAX_INPUT_BYTES to read larger cases)", None, [])
                    index += 1
                elif raw.strip():
                    yield Item(index, f.name, lineno, raw)
                    index += 1
