"""Start the real ``calfrehab app`` on a free loopback port, for the app's
tests (HTTP and browser alike)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from helpers import running

REPO = Path(__file__).resolve().parents[1]


def isolated_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment with the clinic configuration and the trail kept in
    ``home``: nothing of the machine's own ~/.config or trail is read."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("CALFREHAB_CONFIG", "CALFREHAB_AUDIT", "CALFREHAB_CASES",
                        "CALFREHAB_RULES")}
    env.update({"XDG_CONFIG_HOME": str(home / "config"), "XDG_DATA_HOME": str(home / "data"),
                "HOME": str(home)}, **extra)
    return env


@contextlib.contextmanager
def app_served(cases: Path, trail: Path, home: Path, *extra: str) -> Iterator[str]:
    """``calfrehab app --cases CASES --audit TRAIL --port P ARGS`` as a real
    process; yields its base URL once it answers, stops it afterwards."""
    args = ["--cases", str(cases), "--audit", str(trail), *extra]
    log = home / f"app-{time.monotonic_ns()}.log"  # one per start: a test may start two
    with running("app", args, "/static/app.css", home, log,
                 env=isolated_env(home)) as base:
        yield base


@contextlib.contextmanager
def one_patient_served(home: Path, name: str) -> Iterator[tuple[str, Path, Path]]:
    """The app serving a clinic of one patient, ``name``: the runner example
    copied to ``home/cases/NAME.json`` (owner-only, as the app writes case
    files), with its trail at ``home/trail.sqlite3``. Yields (base URL, case
    file, trail)."""
    cases = home / "cases"
    cases.mkdir()
    case = cases / f"{name}.json"
    shutil.copy(REPO / "examples" / "runner-stuck-on-two-leg.json", case)
    case.chmod(0o600)
    trail = home / "trail.sqlite3"
    with app_served(cases, trail, home) as base:
        yield base, case, trail


@contextlib.contextmanager
def one_patient_client(home: Path, name: str) -> Iterator[dict[str, Any]]:
    """:func:`one_patient_served` with an HTTP client on it: yields
    ``{"client": httpx.Client, "case": Path, "trail": Path}``, the shape the
    app's HTTP tests share as their ``served`` fixture."""
    with one_patient_served(home, name) as (base, case, trail), \
            httpx.Client(base_url=base, timeout=60, follow_redirects=True) as client:
        yield {"client": client, "case": case, "trail": trail}


def hidden(html: str, name: str) -> str:
    """The value of the first hidden field ``name`` in a page."""
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no hidden field {name} in the page"
    return found.group(1)
