"""Start the real ``calfrehab app`` on a free loopback port, for the app's
tests (HTTP and browser alike)."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import free_port

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
def app_served(cases: Path, trail: Path, home: Path, *args: str) -> Iterator[str]:
    """``calfrehab app --cases CASES --audit TRAIL --port P ARGS`` as a real
    process; yields its base URL once it answers, stops it afterwards."""
    import httpx

    port = free_port()
    log = home / f"app-{port}.log"
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from calfrehab.cli.main import cli; cli()", "app",
             "--cases", str(cases), "--audit", str(trail), "--port", str(port), *args],
            stdout=err, stderr=err, cwd=home, env=isolated_env(home))
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the app exited: {log.read_text()}")
            try:
                httpx.get(base + "/static/app.css", timeout=5)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    pytest.fail(f"the app did not start: {log.read_text()}")
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def hidden(html: str, name: str) -> str:
    """The value of the first hidden field ``name`` in a page."""
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no hidden field {name} in the page"
    return found.group(1)
