#!/usr/bin/env python3
"""Set up a virtual environment and run the demo or the whole test suite.

Needs only Python 3.11+ and a C compiler (durable-rules builds its engine
from source). Usage:

    python3 scripts/dev.py demo                 # install (and the app), decide an example
    python3 scripts/dev.py test [PYTEST ARGS]   # install with test extras, run pytest
    python3 scripts/dev.py lint                 # install with dev extras: ruff, mypy, import-linter
    python3 scripts/dev.py serve [SERVE ARGS]   # install with the serve extra, calfrehab serve
    python3 scripts/dev.py wheel                # only build the durable-rules wheel

Options before the command's own arguments:

    --python VERSION_OR_PATH   the interpreter (e.g. 3.13, or /usr/bin/python3.12);
                               its environment is .venv-VERSION beside .venv

durable-rules is built once per interpreter into a local wheel cache
(``$CALFREHAB_WHEELS``, default ``~/.cache/calfrehab/wheels``) with
``CPPFLAGS="-O2 -DPyEval_CallObject=PyObject_CallObject"``: its setup.py
overwrites CFLAGS, so CPPFLAGS is the only way to optimise it (about 1.4x
faster), and the define is what lets it build on Python 3.13. It is built
from PyPI's sdist with calfrehab's fix to its retraction
(scripts/durable_patch.py), as version ``2.0.28+calfrehab.1``: the driver
reuses one durable state per ruleset only on that build.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import durable_patch

ROOT = Path(__file__).resolve().parents[1]
DEMO_CASE = "examples/runner-stuck-on-two-leg.json"
DURABLE = "durable-rules==2.0.28"
# What durable_wheel builds: 2.0.28 with calfrehab's fix (still ==2.0.28 to pip).
DURABLE_BUILD = f"2.0.28+{durable_patch.LOCAL_LABEL}"
DURABLE_CPPFLAGS = "-O2 -DPyEval_CallObject=PyObject_CallObject"
WHEELS = Path(os.environ.get("CALFREHAB_WHEELS")
              or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
              / "calfrehab" / "wheels")
# What `lint` type-checks, from the repository root (the working tree itself).
TYPED = ("calfrehab", "tests", "scripts", "benchmarks")
PIP_QUIET = ("--quiet", "--disable-pip-version-check")


def run(*args: str | Path, **env: str) -> None:
    print("+", " ".join(str(a) for a in args), flush=True)
    result = subprocess.run([str(a) for a in args], cwd=ROOT, env={**os.environ, **env})
    if result.returncode != 0:
        sys.exit(result.returncode)


def find_python(spec: str | None) -> tuple[Path, Path]:
    """The interpreter for ``spec`` and the virtual environment that goes with it."""
    if spec is None:
        if sys.version_info < (3, 11):  # noqa: UP036 - this script may run on an older python3
            sys.exit(f"calfrehab needs Python 3.11 or newer; this is {sys.version.split()[0]}")
        return Path(sys.executable), Path(os.environ.get("CALFREHAB_VENV", ROOT / ".venv"))
    venv_dir = ROOT / f".venv-{Path(spec).name.removeprefix('python')}"
    if os.sep in spec:
        return Path(spec), venv_dir
    candidates: list[str] = []
    if shutil.which("pyenv"):
        # pyenv keeps full versions (3.13.0); take the newest that starts with spec.
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip()
        versions = sorted(
            (p for p in Path(root, "versions").glob(f"{spec}*")
             if (p / "bin" / "python3").exists()),
            key=lambda p: [int(x) if x.isdigit() else 0 for x in p.name.split(".")],
        )
        candidates += [str(v / "bin" / "python3") for v in reversed(versions)]
    on_path = shutil.which(f"python{spec}")
    if on_path:
        candidates.append(on_path)
    # A pyenv shim can be on PATH for a version it will not run: try each.
    found = next((c for c in candidates
                  if subprocess.run([c, "-c", "pass"], capture_output=True).returncode == 0), None)
    if found is None:
        sys.exit(f"no Python {spec} found (looked in pyenv and for python{spec} on PATH)")
    return Path(found), venv_dir


def ensure_venv(python: Path, venv_dir: Path) -> Path:
    bin_dir = venv_dir / ("Scripts" if os.name == "nt" else "bin")
    if not (bin_dir / "python").exists():
        print(f"creating {venv_dir} with {python}", flush=True)
        run(python, "-m", "venv", venv_dir)
    return bin_dir


def durable_wheel(bin_dir: Path) -> None:
    """Build durable-rules once for this interpreter into the wheel cache,
    patched (scripts/durable_patch.py)."""
    tag = subprocess.run(
        [str(bin_dir / "python"), "-c",
         "import sys; print(f'cp{sys.version_info[0]}{sys.version_info[1]}')"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    if any(WHEELS.glob(f"durable_rules-{DURABLE_BUILD}-{tag}-*.whl")):
        return
    WHEELS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=WHEELS) as build:
        # The sdist itself (PyPI has no wheel of 2.0.28), patched, then built.
        run(bin_dir / "python", "-m", "pip", "download", *PIP_QUIET, "--no-cache-dir",
            "--no-deps", "--no-binary", ":all:", "-d", build, DURABLE)
        (sdist,) = Path(build).glob("durable*rules-*.tar.gz")
        with tarfile.open(sdist) as tar:
            # The "data" filter (no links out, no devices) exists from
            # Python 3.11.4 on; an older 3.11 extracts PyPI's sdist as is.
            if hasattr(tarfile, "data_filter"):
                tar.extractall(build, filter="data")
            else:
                tar.extractall(build)
        (source,) = (p for p in Path(build).iterdir() if p.is_dir())
        durable_patch.patch(source)
        out = Path(build) / "out"
        # --no-cache-dir: pip's own cache may hold an unoptimised build.
        run(bin_dir / "python", "-m", "pip", "wheel", *PIP_QUIET, "--no-cache-dir",
            "--no-deps", "-w", out, source, CPPFLAGS=DURABLE_CPPFLAGS)
        for wheel in out.glob("*.whl"):
            # Rename into place: a wheel in the cache is always whole.
            os.replace(wheel, WHEELS / wheel.name)


def install(bin_dir: Path, extra: str = "") -> None:
    durable_wheel(bin_dir)
    # An editable install of the one real package calfrehab/: the tests and
    # the type checker read the working tree itself, no copy in site-packages
    # (tests/packaging/test_packaging.py checks what a wheel ships). compat mode puts the
    # repository root on sys.path through a plain .pth file: no import hook,
    # so every tool resolves calfrehab the way Python does.
    target = f".{extra}" if extra else "."
    # The patched durable-rules named: an environment holding the plain
    # 2.0.28 already satisfies calfrehab's requirement and would keep it.
    run(bin_dir / "python", "-m", "pip", "install", *PIP_QUIET,
        "--find-links", WHEELS, f"durable-rules=={DURABLE_BUILD}",
        "--config-settings", "editable_mode=compat", "-e", target)


def ensure_browser() -> None:
    """Debian's Chromium for the browser tests (tests/browser/test_browser.py).

    Playwright drives the system's browser by path, so nothing downloads a
    browser build. As root with apt-get it is installed when missing;
    elsewhere the browser tests say loudly that they did not run (and fail
    in CI, where this runs as root).
    """
    if any(shutil.which(n) for n in ("chromium", "chromium-browser")) \
            or os.environ.get("CALFREHAB_CHROMIUM"):
        return
    if os.name != "posix" or os.geteuid() != 0 or not shutil.which("apt-get"):
        print("NOTE: no chromium found; tests/browser/test_browser.py will not run "
              "(install Debian's chromium, or run this as root to have it installed)",
              flush=True)
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for args in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium"]):
        print("+", " ".join(args), flush=True)
        if subprocess.run(args, env=env).returncode != 0:
            print("NOTE: could not install chromium; the browser tests will not run",
                  flush=True)
            return


def main(argv: list[str]) -> None:
    args = argv[1:]
    spec = None
    if args[:1] == ["--python"] and len(args) >= 2:
        spec, args = args[1], args[2:]
    what, rest = (args[0], args[1:]) if args else ("", [])
    if what not in ("demo", "test", "lint", "wheel", "serve"):
        sys.exit(__doc__)
    bin_dir = ensure_venv(*find_python(spec))
    if what == "wheel":
        durable_wheel(bin_dir)
    elif what == "demo":
        # With the app extra: the README's next step for a physiotherapist
        # is `calfrehab app`, and it must work in the environment made here.
        install(bin_dir, "[app]")
        run(bin_dir / "calfrehab", "next", DEMO_CASE, "--no-record")
    elif what == "serve":
        install(bin_dir, "[serve]")
        run(bin_dir / "calfrehab", "serve", *rest)
    elif what == "lint":
        install(bin_dir, "[dev]")
        run(bin_dir / "ruff", "check", ".")
        # mypy reads the working tree from the repository root: the package
        # and everything that uses it.
        run(bin_dir / "mypy", "--config-file", ROOT / "pyproject.toml", *TYPED)
        # The import contract (.importlinter): the engine's layers import
        # only downward, the front ends only the public API, and no package
        # has an import circle.
        run(bin_dir / "lint-imports", "--no-cache")
    else:
        install(bin_dir, "[test]")
        ensure_browser()
        run(bin_dir / "pytest", *rest)


if __name__ == "__main__":
    main(sys.argv)
