"""The output file and the errors report, written atomically as rows arrive.

Both go through :class:`calfrehab.engine.safeio.AtomicFile`: a temporary
file beside the target, moved over it only when the run completes, and
only ever over a regular file or nothing. A write that fails (disk full,
file too large) is an :class:`~calfrehab.engine.errors.OutputError` naming
the file, never a traceback, and leaves the previous file as it was.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from calfrehab.engine.batch.rows import CSV_COLUMNS
from calfrehab.engine.errors import OutputError
from calfrehab.engine.safeio import AtomicFile, shown

__all__ = ["ErrorsWriter", "OutputWriter"]


def _failed(target: Path, exc: OSError) -> OutputError:
    return OutputError(f"cannot write {shown(target)}: {exc.strerror or exc}")


class OutputWriter:
    """Rows of one format (csv, jsonl or json) into ``path``."""

    def __init__(self, path: Path, fmt: str) -> None:
        self.fmt = fmt
        self.path = path
        self.file = AtomicFile(path, text=True, newline="" if fmt == "csv" else None)
        self.rows = 0
        self._csv = csv.writer(self.file.fh, lineterminator="\n") if fmt == "csv" else None
        try:
            if self._csv is not None:
                self._csv.writerow(CSV_COLUMNS)
            elif fmt == "json":
                self.file.fh.write("[")
        except OSError as exc:
            self.abort()
            raise _failed(path, exc) from None

    def write(self, row: Any) -> None:
        try:
            if self._csv is not None:
                self._csv.writerow(row)
            elif self.fmt == "json":
                self.file.fh.write(("\n" if self.rows == 0 else ",\n") + row)
            else:
                self.file.fh.write(row + "\n")
        except OSError as exc:
            raise _failed(self.path, exc) from None
        self.rows += 1

    def commit(self) -> None:
        try:
            if self.fmt == "json":
                self.file.fh.write("\n]\n" if self.rows else "]\n")
        except OSError as exc:
            raise _failed(self.path, exc) from None
        self.file.commit()

    def abort(self) -> None:
        self.file.abort()


class ErrorsWriter:
    """The errors report: one JSON object a line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file = AtomicFile(path, text=True)

    def write(self, report: dict[str, Any]) -> None:
        try:
            self.file.fh.write(json.dumps(report, ensure_ascii=False) + "\n")
        except OSError as exc:
            raise _failed(self.path, exc) from None

    def commit(self) -> None:
        self.file.commit()

    def abort(self) -> None:
        self.file.abort()
