"""A batch's worker processes made ready while the batch process is still
importing and checking: their forkserver started first.

A batch with ``jobs > 1`` forks its workers from a forkserver that has
already imported the engine (:data:`WORKER_MODULE`), so that each worker
starts in milliseconds. Python starts that forkserver only when the first
worker is asked for, which is after the batch process has imported the
engine, checked its outputs and rules, counted the cases and opened the
audit trail; the forkserver's own import of the engine (about a quarter of a
second) then waited for all of that, and a batch's wall time paid for the
two one after the other. Started first, the two import side by side on two
cores (docs/performance.md, "Worker start method").

Only the standard library is imported here (this module sits in the
engine's lowest layer and names the worker module as text), so that the
start is not itself behind the engine's imports. Starting the forkserver
writes nothing: a batch that is then refused (an output that would destroy
data, bad rules) leaves no trace, and the forkserver ends with this process.
"""

from __future__ import annotations

import multiprocessing

WORKER_MODULE = "calfrehab.engine.batch.worker"


def forkserver_available() -> bool:
    """Whether this platform has the forkserver start method (Linux, macOS)."""
    return "forkserver" in multiprocessing.get_all_start_methods()


def start_batch_workers(jobs: int | None, *, dask: str | None = None,
                        start_method: str | None = None) -> bool:
    """Start, now, the forkserver that a local batch of ``jobs`` workers will
    fork them from, with the engine imported in it. Nothing happens (False)
    for one job or the default (which is one job for a small batch: only the
    batch knows how many cases it has), a Dask batch, another start method,
    or a platform without a forkserver. Idempotent: a running forkserver is
    kept."""
    if jobs is None or jobs < 2 or dask is not None \
            or start_method not in (None, "forkserver") or not forkserver_available():
        return False
    from multiprocessing import forkserver

    multiprocessing.get_context("forkserver").set_forkserver_preload([WORKER_MODULE])
    forkserver.ensure_running()
    return True
