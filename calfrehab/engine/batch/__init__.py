"""Decide many cases: this package's public names.

- :mod:`.inputs`: which files and cases, in which order;
- :mod:`.rows`: the CSV and JSON row of a decision (the columns, documented);
- :mod:`.outputs`: the output file and the errors report, written atomically;
- :mod:`.worker`: what a worker process runs (one engine per process);
- :mod:`.lock`: one recording batch per audit trail;
- :mod:`.local`: worker processes on this machine (``--jobs``);
- :mod:`.dask_backend`, :mod:`.merge`: partitions on a Dask cluster
  (``--dask``), and the merge of their outputs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from calfrehab.engine.batch.inputs import (
    Discovered,
    InputFile,
    NoCaseFilesError,
    count_cases,
    discover,
    iter_items,
)
from calfrehab.engine.batch.lock import TrailBusyError
from calfrehab.engine.batch.options import (
    FORMATS,
    JOBS_PER_CPU,
    BatchError,
    BatchOptions,
    BatchSummary,
    BatchUsageError,
    default_errors_path,
    default_jobs,
    format_for,
    max_jobs,
)
from calfrehab.engine.batch.rows import CSV_COLUMN_DOCS, CSV_COLUMNS, csv_row, json_row
from calfrehab.engine.workerstart import start_batch_workers

if TYPE_CHECKING:
    import threading

    from calfrehab.engine.batch.local import ProgressFn

__all__ = [
    "CSV_COLUMNS",
    "CSV_COLUMN_DOCS",
    "FORMATS",
    "JOBS_PER_CPU",
    "BatchError",
    "BatchOptions",
    "BatchSummary",
    "BatchUsageError",
    "Discovered",
    "InputFile",
    "NoCaseFilesError",
    "TrailBusyError",
    "count_cases",
    "csv_row",
    "default_errors_path",
    "default_jobs",
    "discover",
    "format_for",
    "iter_items",
    "json_row",
    "max_jobs",
    "run_batch",
]


def run_batch(options: BatchOptions, progress: ProgressFn | None = None,
              stop: threading.Event | None = None) -> BatchSummary:
    """Decide every case of ``options.inputs``: in worker processes here
    (:func:`.local.run_batch`), or in partitions on a Dask cluster when
    ``options.dask`` (:func:`.dask_backend.run_dask`).

    ``progress(done, total)`` is called after each chunk. Setting ``stop``
    ends the run early and cleanly (``summary.interrupted``). Raises
    :class:`BatchError` (or the trail's AuditError, or RuleError) when the
    batch as a whole cannot run; then no output file is written or replaced.
    """
    # Before the imports below, for a caller that has not done it (the CLI
    # does, earlier): the workers' forkserver imports the engine while this
    # process does (engine/workerstart.py).
    start_batch_workers(options.jobs, dask=options.dask, start_method=options.start_method)
    # Imported here: the worker pool (multiprocessing, concurrent.futures)
    # and Dask load when a batch runs, not when the API names its options.
    from calfrehab.engine.batch import local, worker

    if options.dask is not None:
        from calfrehab.engine.batch.dask_backend import run_dask

        with worker.batch_gc():
            return run_dask(options, progress, stop)
    return local.run_batch(options, progress, stop)
