"""The code the driver generates from a compiled rule base, compiled once and
kept beside it between runs (knowledge/codecache.py, knowledge/cache.py's
``.code`` files). conftest points XDG_CACHE_HOME at a temp directory."""

from __future__ import annotations

import json
import marshal
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from calfrehab.engine.knowledge import cache, codecache
from calfrehab.engine.knowledge.loader import default_rules_dir, rulebase_sha256

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "examples" / "plantar-single-leg-to-weighted.json"

# A fresh process: prepare the rules, count what it compiles, decide a case.
_RUN = """
import json, sys
from calfrehab.engine.knowledge import codecache
compiles = []
real = compile
codecache.compile = lambda *args: compiles.append(1) or real(*args)
from calfrehab.engine import api
reasoner = api.prepare(sys.argv[1])
decided = api.decide_path(sys.argv[2], reasoner)
doc = decided.decision.model_dump(mode="json")
doc.pop("decision_id")
print(json.dumps([len(compiles), doc]))
"""


def _run(directory: Path) -> tuple[int, object]:
    out = subprocess.run([sys.executable, "-c", _RUN, str(directory), str(EXAMPLE)],
                         capture_output=True, text=True, check=True).stdout
    compiles, doc = json.loads(out)
    return compiles, doc


def _rules(tmp_path: Path) -> Path:
    directory = tmp_path / "rules"
    shutil.copytree(default_rules_dir(), directory, ignore=shutil.ignore_patterns("__*"))
    return directory.resolve()


def _code_file(directory: Path) -> Path:
    return cache.cache_dir() / f"{cache.cache_key(directory, rulebase_sha256(directory))}.code"


def test_a_second_run_compiles_nothing_and_decides_alike(tmp_path: Path) -> None:
    directory = _rules(tmp_path)
    first, decided = _run(directory)
    assert first > 10  # the driver's predicates and selectors, compiled
    assert _code_file(directory).is_file()
    again, decided_again = _run(directory)
    assert again == 0
    assert decided_again == decided


@pytest.mark.parametrize("damage", [b"", b"not marshal data", marshal.dumps([1, 2])])
def test_a_damaged_code_file_means_compiling_afresh(tmp_path: Path, damage: bytes) -> None:
    directory = _rules(tmp_path)
    _, decided = _run(directory)
    _code_file(directory).write_bytes(damage)
    compiles, decided_again = _run(directory)
    assert compiles > 10
    assert decided_again == decided
    # ... and the next run has the code again.
    assert _run(directory)[0] == 0


def test_code_is_found_only_by_its_exact_source() -> None:
    one = codecache.compiled("lambda v: v == 1", "eval")
    assert codecache.compiled("lambda v: v == 1", "eval") is one
    other = codecache.compiled("lambda v: v == 2", "eval")
    assert other is not one
    assert eval(other)(2) and not eval(one)(2)


def test_what_is_not_a_code_file_is_ignored() -> None:
    for data in (b"", b"\x00garbage", marshal.dumps({"k": "not code"}), marshal.dumps(3)):
        codecache.load(data)  # no error
    assert codecache.compiled("lambda v: 'k'", "eval").co_filename == "<string>"


def test_a_code_file_holds_only_the_code_its_run_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each run that compiles something rewrites its rule base's .code file
    # whole: with only what that run asked for, not every code object the
    # process has seen (a stale generator's output loaded from the file,
    # another rule base's), the file cannot grow from run to run.
    monkeypatch.setattr(codecache, "_CODES", {})
    monkeypatch.setattr(codecache, "_USED", set(), raising=False)
    monkeypatch.setattr(codecache, "_added", False)
    codecache.compiled("lambda v: 'old'", "eval")
    earlier = codecache.pending()
    assert earlier is not None
    codecache.load(earlier)  # a later run, with the file of an earlier one
    codecache.compiled("lambda v: 'new'", "eval")
    written = codecache.pending()
    assert written is not None
    assert [eval(code)(0) for code in marshal.loads(written).values()] == ["new"]


def test_code_compiled_before_a_load_is_still_saved(monkeypatch: pytest.MonkeyPatch) -> None:
    # A reasoner built outside prepare() compiles before any .code file is
    # read; loading one afterwards must not make that code look saved.
    monkeypatch.setattr(codecache, "_CODES", {})
    monkeypatch.setattr(codecache, "_USED", set(), raising=False)
    monkeypatch.setattr(codecache, "_added", False)
    codecache.compiled("lambda v: 'before'", "eval")
    codecache.load(marshal.dumps({}))
    written = codecache.pending()
    assert written is not None
    assert [eval(code)(0) for code in marshal.loads(written).values()] == ["before"]
