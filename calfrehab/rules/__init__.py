"""The shipped knowledge base: rule files, the ladder, sources and case
tables, as data. Nothing here is code but the locator below."""

from __future__ import annotations

from importlib.resources import as_file, files
from pathlib import Path


def default_rules_dir() -> Path:
    """The directory of the shipped rules (inside the installed package)."""
    resource = files("calfrehab.rules")
    with as_file(resource) as path:
        # Installed from a wheel or in place, the package is a real directory.
        return Path(path)
