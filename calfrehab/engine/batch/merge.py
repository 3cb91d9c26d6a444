"""The merge step: partition outputs into one output, as a local batch writes it.

Each Dask partition writes its rows to its own file (CSV with the header,
or one JSON document a line) and its errors to its own report. The merge
concatenates them in partition order into the final ``--out`` (one CSV
header; a JSON array for ``json``) and the final errors report, through
the same atomic writers, so the merged output has exactly the columns and
the order of ``calfrehab batch --jobs N`` on the same inputs.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from calfrehab.engine.batch.outputs import ErrorsWriter, OutputWriter
from calfrehab.engine.errors import OutputError
from calfrehab.engine.safeio import shown

__all__ = ["merge_outputs", "part_format"]

_COPY_BLOCK = 1 << 20


def part_format(fmt: str) -> str:
    """The format a partition writes for a final format (json: JSON Lines,
    wrapped into an array by the merge)."""
    return "csv" if fmt == "csv" else "jsonl"


def merge_outputs(parts: Sequence[Path], error_parts: Sequence[Path], out: Path,
                  errors_path: Path, fmt: str) -> None:
    """Merge partition outputs (in the order given) into ``out`` and
    ``errors_path``."""
    writer = OutputWriter(out, fmt)
    errors = ErrorsWriter(errors_path)
    target = out
    try:
        for part in parts:
            with part.open(encoding="utf-8", newline="") as fh:
                if fmt == "csv":
                    fh.readline()  # each part's header; the writer wrote one
                    shutil.copyfileobj(fh, writer.file.fh, _COPY_BLOCK)
                else:
                    for line in fh:
                        writer.write(line.rstrip("\n"))
        target = errors_path
        for part in error_parts:
            with part.open(encoding="utf-8") as fh:
                shutil.copyfileobj(fh, errors.file.fh, _COPY_BLOCK)
        writer.commit()
        errors.commit()
    except OSError as exc:
        writer.abort()
        errors.abort()
        raise OutputError(f"cannot write {shown(target)}: {exc.strerror or exc}") from None
    except BaseException:
        writer.abort()
        errors.abort()
        raise
