"""A batch's workers' forkserver started before the batch imports the engine
(calfrehab/engine/workerstart.py, api.start_batch_workers): in a fresh
interpreter, so that no earlier test's forkserver or imports can make these
pass by accident."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from calfrehab.engine.workerstart import WORKER_MODULE, forkserver_available, start_batch_workers

PROBE = textwrap.dedent("""
    import json, os, sys, time
    from pathlib import Path
    from calfrehab.engine import api

    started = api.start_batch_workers(2)
    engine_imported = [m for m in ("calfrehab.engine.batch", "calfrehab.engine.pipeline",
                                   "durable.lang", "pydantic.main") if m in sys.modules]
    commands = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not commands:
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) != os.getpid():
                    continue
                cmd = (stat.parent / "cmdline").read_bytes().replace(b"\\0", b" ").decode()
            except (OSError, IndexError, ValueError):
                continue
            if "forkserver" in cmd:
                commands.append(cmd)
        time.sleep(0.05)
    print(json.dumps({"started": started, "engine_imported": engine_imported,
                      "forkservers": commands}))
""")


def test_the_forkserver_starts_with_the_engine_preloaded_before_this_process_imports_it(
) -> None:
    assert forkserver_available()  # Linux: the platform CI runs on
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          timeout=120, check=True)
    probe = json.loads(done.stdout.strip().splitlines()[-1])
    assert probe["started"] is True
    # Starting it imports no part of the engine here: that is the point.
    assert probe["engine_imported"] == []
    assert len(probe["forkservers"]) == 1
    assert WORKER_MODULE in probe["forkservers"][0]


@pytest.mark.parametrize(("jobs", "dask", "method"), [
    (None, None, None),  # the default: one job for a small batch, known only later
    (1, None, None),
    (2, "local", None),  # Dask starts its own workers
    (2, None, "spawn"),
])
def test_nothing_is_started_where_no_forkserver_would_be_used(
        jobs: int | None, dask: str | None, method: str | None) -> None:
    assert start_batch_workers(jobs, dask=dask, start_method=method) is False
