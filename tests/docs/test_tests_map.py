"""tests/README.md maps every test file where it is, and the tree keeps the
rules that map relies on: unique basenames (pytest's default import mode
and mypy both name a module by its basename) and no __init__.py."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from helpers import TESTS

MAP = TESTS / "README.md"


def _test_files() -> list[Path]:
    return sorted(p.relative_to(TESTS) for p in TESTS.rglob("test_*.py")
                  if ".venv" not in p.parts and "__pycache__" not in p.parts)


def _mapped() -> set[Path]:
    """Every `folder/` + `file.py` pair in the map's tables (a row with an
    empty folder cell continues the folder above it)."""
    mapped: set[Path] = set()
    folder = ""
    for line in MAP.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) < 3:
            continue
        if re.fullmatch(r"`[a-z_/]+/`", cells[0]):
            folder = cells[0].strip("`")
        file = re.fullmatch(r"`(test_[a-z0-9_]+\.py)`", cells[1])
        if file and folder:
            mapped.add(Path(folder) / file.group(1))
    return mapped


def test_every_test_file_is_on_the_map_where_it_is() -> None:
    files, mapped = set(_test_files()), _mapped()
    assert len(files) > 60, "the walk found too few test files: is TESTS right?"
    assert sorted(map(str, files - mapped)) == [], "test files missing from tests/README.md"
    assert sorted(map(str, mapped - files)) == [], "tests/README.md names files that are not there"


def test_basenames_are_unique() -> None:
    twice = [name for name, n in Counter(p.name for p in _test_files()).items() if n > 1]
    assert twice == [], f"a test basename is used twice (see tests/README.md): {twice}"


def test_no_package_markers_under_tests() -> None:
    # An __init__.py would make pytest import that folder's files under a
    # package name and put a different folder on sys.path, so the plain-name
    # imports between test files (tests/README.md) would stop resolving.
    assert sorted(TESTS.rglob("__init__.py")) == []


def test_the_trail_has_one_noun() -> None:
    trail = [p.name for p in _test_files() if p.parent == Path("engine/trail")]
    assert trail and all(n.startswith("test_trail_") for n in trail), trail
    # "audit" is the command's name (calfrehab audit), not a second noun.
    elsewhere = [str(p) for p in _test_files()
                 if ("audit" in p.name or "trail" in p.name) and p.parent != Path("engine/trail")]
    assert elsewhere == [], "the trail's tests are test_trail_*.py under engine/trail/"
    assert not [n for n in trail if "audit" in n], trail


def test_every_test_path_named_in_the_repository_exists() -> None:
    # Docs, comments and scripts name test files (`tests/engine/api/test_api.py
    # checks it`); a file moved or renamed must not leave those pointing at
    # nothing. The tree is walked (not git ls-files): a copy without .git runs too.
    repo = TESTS.parent
    named = re.compile(r"\btests/[\w/]+\.py\b")
    places = [repo / n for n in ("README.md", "pyproject.toml", ".importlinter", "Makefile")]
    for folder in ("calfrehab", "docs", "scripts", "benchmarks", "tests", "examples", ".ci"):
        places += [p for p in (repo / folder).rglob("*") if p.is_file()
                   and "vendor" not in p.parts and "__pycache__" not in p.parts
                   and p.suffix in (".py", ".md", ".toml", ".yaml", ".cfg", ".txt", "")]
    stale = [f"{place.relative_to(repo)}: {m}" for place in places if place.is_file()
             for m in named.findall(place.read_text(encoding="utf-8", errors="replace"))
             if not (repo / m).is_file()]
    assert stale == [], "these name test files that do not exist"
