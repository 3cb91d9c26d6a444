"""Shared pytest configuration: hypothesis profiles and the reasoner fixture.

Hypothesis profiles:

- ``ci`` (default): fast, 40 examples a property, no deadline (the first
  decision of a process pays for compiling the rules), too_slow suppressed.
- ``thorough``: 2000 examples a property, for a deliberate bug hunt.

Pick one with hypothesis' own pytest option ``--hypothesis-profile thorough``
or the environment, ``CALFREHAB_HYPOTHESIS_PROFILE=thorough``; the command
line wins over the environment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from helpers import shared_examples
from hypothesis import HealthCheck, settings

from calfrehab.engine import api
from calfrehab.engine.inference.driver import Reasoner

PROFILE_ENV = "CALFREHAB_HYPOTHESIS_PROFILE"

settings.register_profile(
    "ci",
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile(
    "thorough",
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much],
    print_blob=True,
)
# Loaded at import so the profile is in force before test modules are
# collected; hypothesis' pytest plugin loads --hypothesis-profile after this.
settings.load_profile(os.environ.get(PROFILE_ENV) or "ci")


def pytest_configure(config: Any) -> None:
    if not config.getoption("hypothesis_profile", default=None):
        settings.load_profile(os.environ.get(PROFILE_ENV) or "ci")


@pytest.fixture(scope="session")
def reasoner() -> Reasoner:
    """The shipped rule base, compiled and registered once per test session."""
    return api.prepare(None)


@pytest.fixture
def shared_dir() -> Path:
    """``../shared/examples``, or its checked copy in tests/contract/."""
    return shared_examples()


@pytest.fixture(autouse=True)
def _no_trail_in_home(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: Any) -> None:
    """A test that records without naming a trail writes to a temp file,
    never to the developer's (or CI's) ~/.local/share."""
    if "CALFREHAB_AUDIT" not in os.environ:
        path = tmp_path_factory.mktemp("trail") / "audit.sqlite3"
        monkeypatch.setenv("CALFREHAB_AUDIT", str(path))


@pytest.fixture(autouse=True)
def _no_clinic_config_from_home(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: Any) -> None:
    """A developer's own calfrehab.toml (its time zone, its trail) never
    reaches a test: the user's configuration directory is an empty temp one."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config")))
    monkeypatch.delenv("CALFREHAB_CONFIG", raising=False)


@pytest.fixture(autouse=True)
def _no_rule_cache_in_home(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: Any) -> None:
    """Compiled rule bases (knowledge/cache.py) go to a temp directory, never
    to the developer's (or CI's) ~/.cache, and no test meets one compiled
    by another checkout."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
