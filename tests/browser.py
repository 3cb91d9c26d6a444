"""Debian's Chromium driven by Playwright, for every browser test.

The browser is the system's (``chromium`` on PATH, or ``CALFREHAB_CHROMIUM``):
nothing downloads a browser build. Without it the tests skip and say why on a
developer's machine, and fail in CI (``CI=true``), where ``scripts/dev.py
test`` installs it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any, NoReturn

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"
# Flags that keep Chromium off the network and quiet in a sandboxed root
# session: no background fetches, no component updates, no first-run UI.
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def chromium_path() -> str | None:
    for name in (os.environ.get("CALFREHAB_CHROMIUM"), "chromium", "chromium-browser"):
        if name and (found := shutil.which(name)):
            return found
    return None


def unavailable(reason: str) -> NoReturn:
    message = (f"BROWSER TESTS NOT RUN: {reason}. Install Debian's chromium "
               "(apt-get install chromium) and the test extras (pip install -e '.[test]'); "
               "`python3 scripts/dev.py test` does both when run as root.")
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def launched_chromium() -> Iterator[Any]:
    """A headless Chromium for a module-scoped fixture to yield."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed")
    path = chromium_path()
    if path is None:
        unavailable("no chromium on PATH")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
