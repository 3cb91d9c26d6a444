"""Many cases at once: for ``calfrehab batch`` and a clinic's scripts.

:class:`BatchOptions` say what to decide and where the rows go;
:func:`run_batch` decides them in worker processes (or on a Dask cluster)
and returns a :class:`BatchSummary`. :func:`start_batch_workers`, called
first, lets the workers' forkserver import the engine while the caller
still imports and checks. The batch package and its worker pool load when
one of their names is first used (see _lazy.py), so that
:func:`start_batch_workers` is not behind them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from calfrehab.engine.workerstart import start_batch_workers

if TYPE_CHECKING:
    from calfrehab.engine.batch import (
        BatchOptions,
        BatchSummary,
        format_for,
        run_batch,
    )
else:
    from calfrehab.engine.api._lazy import lazy_names

    __getattr__, __dir__ = lazy_names(__name__, table={
        "calfrehab.engine.batch": ("BatchOptions", "BatchSummary", "format_for", "run_batch"),
    })

__all__ = [
    "BatchOptions",
    "BatchSummary",
    "format_for",
    "run_batch",
    "start_batch_workers",
]
