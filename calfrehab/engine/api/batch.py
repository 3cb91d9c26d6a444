"""Many cases at once: for ``calfrehab batch`` and a clinic's scripts.

:class:`BatchOptions` say what to decide and where the rows go;
:func:`run_batch` decides them in worker processes (or on a Dask cluster)
and returns a :class:`BatchSummary`. The worker pool loads when a batch
runs (:func:`calfrehab.engine.batch.run_batch`), not on import.
"""

from __future__ import annotations

from calfrehab.engine.batch import (
    BatchOptions,
    BatchSummary,
    format_for,
    run_batch,
)

__all__ = [
    "BatchOptions",
    "BatchSummary",
    "format_for",
    "run_batch",
]
