#!/usr/bin/env python3
"""Set up a virtual environment and run the demo or the whole test suite.

Needs only Python 3.11+ and a C compiler (durable-rules builds its engine
from source). Usage:

    python3 scripts/dev.py demo    # install, then decide an example case
    python3 scripts/dev.py test    # install with test extras, then run pytest
    python3 scripts/dev.py lint    # install with dev extras, then ruff and mypy
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(os.environ.get("CALFREHAB_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
DEMO_CASE = "examples/runner-stuck-on-two-leg.json"


def run(*args: str | Path, **env: str) -> None:
    print("+", " ".join(str(a) for a in args), flush=True)
    result = subprocess.run([str(a) for a in args], cwd=ROOT, env={**os.environ, **env})
    if result.returncode != 0:
        sys.exit(result.returncode)


def ensure_venv() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - this script may run on an older python3
        sys.exit(f"calfrehab needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not (BIN / "python").exists():
        print(f"creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=False).create(VENV)


def install(extra: str = "") -> None:
    # A regular (not editable) install: the tests run against the package as
    # a clinic would install it, rules shipped inside it.
    target = f".{extra}" if extra else "."
    run(BIN / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        target)
    # Drop the build tree setuptools leaves behind, so it never shadows the
    # installed package.
    for stale in ("build",):
        path = ROOT / stale
        if path.is_dir():
            import shutil

            shutil.rmtree(path, ignore_errors=True)


def main(argv: list[str]) -> None:
    what = argv[1] if len(argv) > 1 else ""
    if what not in ("demo", "test", "lint"):
        sys.exit(__doc__)
    ensure_venv()
    if what == "demo":
        install()
        run(BIN / "calfrehab", "next", DEMO_CASE, "--no-record")
    elif what == "lint":
        install("[dev]")
        run(BIN / "ruff", "check", ".")
        # mypy reads the installed package (py.typed), as a user's checker would.
        run(BIN / "mypy", "--config-file", ROOT / "pyproject.toml",
            "-p", "calfrehab.engine", "-p", "calfrehab.cli")
    else:
        install("[test]")
        # pytest as a script (not `python -m pytest`) so the repository root
        # is not put on sys.path: imports resolve to the installed package.
        run(BIN / "pytest", *argv[2:], CALFREHAB_REQUIRE_INSTALLED="1")


if __name__ == "__main__":
    main(sys.argv)
