"""The compiled rule base kept between runs (knowledge/cache.py): a hit
gives what compiling gives, and anything that could change the answer (the
rules' content or place, a limit, the code) or any damage to the file means
compiling afresh. conftest points XDG_CACHE_HOME at a temp directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from calfrehab.engine import pipeline
from calfrehab.engine.errors import RuleError
from calfrehab.engine.inference.driver import Reasoner
from calfrehab.engine.knowledge import cache
from calfrehab.engine.knowledge.compiler import CompiledRuleBase
from calfrehab.engine.knowledge.loader import default_rules_dir, rulebase_sha256


def _rules(tmp_path: Path) -> Path:
    directory = tmp_path / "rules"
    shutil.copytree(default_rules_dir(), directory, ignore=shutil.ignore_patterns("__*"))
    return directory.resolve()


def _never() -> CompiledRuleBase:
    raise AssertionError("compiled although the cache holds this rule base")


def _cached(directory: Path) -> CompiledRuleBase:
    return cache.compiled_cached(directory, rulebase_sha256(directory),
                                 lambda: pipeline.compile_rules(directory))


def test_a_second_run_reads_what_the_first_compiled(tmp_path: Path) -> None:
    directory = _rules(tmp_path)
    first = _cached(directory)
    assert len(list(cache.cache_dir().glob("*.pickle"))) == 1
    again = cache.compiled_cached(directory, rulebase_sha256(directory), _never)
    assert again == first == pipeline.compile_rules(directory)
    assert again.base.directory == directory


def test_edited_rules_compile_afresh(tmp_path: Path) -> None:
    directory = _rules(tmp_path)
    before = _cached(directory)
    manifest = directory / "rulebase.yaml"
    manifest.write_text(manifest.read_text(encoding="utf-8").replace(
        "version:", "# edited by the clinic\nversion:", 1), encoding="utf-8")
    after = _cached(directory)
    assert after.base.sha256 == rulebase_sha256(directory) != before.base.sha256
    assert len(list(cache.cache_dir().glob("*.pickle"))) == 2
    assert after == pipeline.compile_rules(directory)


def test_the_same_rules_elsewhere_are_their_own_entry(tmp_path: Path) -> None:
    one, other = _rules(tmp_path / "a"), _rules(tmp_path / "b")
    assert rulebase_sha256(one) == rulebase_sha256(other)
    assert _cached(one).base.directory == one
    assert _cached(other).base.directory == other


def test_a_limit_override_is_part_of_the_key(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    directory = _rules(tmp_path)
    _cached(directory)
    monkeypatch.setenv("CALFREHAB_ENGINE_MAX_RULES_PER_RULESET", "1")
    # Over the lowered limit: the error is reported, not a cached success.
    with pytest.raises(RuleError):
        _cached(directory)


def test_an_edited_knowledge_module_is_part_of_the_key(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    directory = _rules(tmp_path)
    sha = rulebase_sha256(directory)
    key = cache.cache_key(directory, sha)
    source = tmp_path / "compiler.py"
    source.write_text("# another compiler\n", encoding="utf-8")
    monkeypatch.setattr(cache, "_SOURCES", [*cache._SOURCES, source])
    assert cache.cache_key(directory, sha) != key


@pytest.mark.parametrize("damage", [b"", b"not a pickle", b"\x80\x05junk"])
def test_a_damaged_file_means_compiling_afresh(tmp_path: Path, damage: bytes) -> None:
    directory = _rules(tmp_path)
    expected = _cached(directory)
    [path] = cache.cache_dir().glob("*.pickle")
    path.write_bytes(damage)
    assert _cached(directory) == expected
    assert cache.compiled_cached(directory, rulebase_sha256(directory), _never) == expected


def test_an_entry_of_the_dataclass_era_means_compiling_afresh(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Until issue 28 item 4 the compiled rule base's records were frozen
    # dataclasses, pickled as copyreg.__newobj__(cls) and then their fields.
    # Such an entry, even under today's key (the key covers the code, so
    # only a clock or a copy brings one back), is compiled afresh, never a
    # crash: a NamedTuple's __new__ wants its fields (TypeError).
    import dataclasses
    import pickle

    from calfrehab.engine.knowledge import rulebase

    @dataclasses.dataclass(frozen=True)
    class LocatedRule:  # as it was
        rule: object
        file: str
        line: int

    directory = _rules(tmp_path)
    expected = _cached(directory)
    [path] = cache.cache_dir().glob("*.pickle")
    LocatedRule.__module__, LocatedRule.__qualname__ = rulebase.__name__, "LocatedRule"
    with monkeypatch.context() as then:
        then.setattr(rulebase, "LocatedRule", LocatedRule)
        old = pickle.dumps((path.stem, [LocatedRule(None, "a.yaml", 1)]),
                           protocol=pickle.HIGHEST_PROTOCOL)
    path.write_bytes(old)
    with pytest.raises(TypeError):
        pickle.loads(old)
    assert _cached(directory) == expected
    assert cache.compiled_cached(directory, rulebase_sha256(directory), _never) == expected


def test_a_file_holding_another_key_is_not_used(tmp_path: Path) -> None:
    one, other = _rules(tmp_path / "a"), _rules(tmp_path / "b")
    _cached(one)
    [path] = cache.cache_dir().glob("*.pickle")
    key = cache.cache_key(other, rulebase_sha256(other))
    shutil.copy(path, cache.cache_dir() / f"{key}.pickle")
    assert _cached(other).base.directory == other


def test_an_unwritable_cache_costs_only_time(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("", encoding="utf-8")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    directory = _rules(tmp_path)
    assert _cached(directory) == pipeline.compile_rules(directory)


def test_a_rule_base_that_fails_is_never_stored(tmp_path: Path) -> None:
    directory = _rules(tmp_path)
    (directory / "broken.yaml").write_text("rules: [{id: x}]\n", encoding="utf-8")
    for _ in range(2):
        with pytest.raises(RuleError):
            _cached(directory)
    assert not cache.cache_dir().exists() or not list(cache.cache_dir().glob("*.pickle"))


def test_no_temporary_file_is_left_behind(tmp_path: Path) -> None:
    _cached(_rules(tmp_path))
    assert sorted(p.suffix for p in cache.cache_dir().iterdir()) == [".pickle"]
    assert all(not p.name.startswith(".tmp-") for p in cache.cache_dir().iterdir())
    assert os.stat(next(cache.cache_dir().iterdir())).st_mode & 0o077 == 0


def test_old_entries_are_pruned_oldest_first(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache, "KEEP", 2)
    directories = [_rules(tmp_path / name) for name in "abc"]
    for when, directory in enumerate(directories):
        _cached(directory)
        [newest] = [p for p in cache.cache_dir().glob("*.pickle")
                    if p.name.startswith(cache.cache_key(directory, rulebase_sha256(directory)))]
        os.utime(newest, ns=(when * 10**9, when * 10**9))
    kept = {p.name for p in cache.cache_dir().glob("*.pickle")}
    assert kept == {f"{cache.cache_key(d, rulebase_sha256(d))}.pickle" for d in directories[1:]}


@pytest.mark.parametrize("enabled", [True, False])
def test_a_reasoner_is_built_with_the_collector_paused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, enabled: bool) -> None:
    # pipeline.prepare pauses the collector while it builds a reasoner (its
    # objects live as long as the process: collecting over them frees
    # nothing), and leaves it as it found it, also when building fails. A
    # directory of its own: a reasoner not yet prepared in this process.
    import gc

    directory = _rules(tmp_path)
    seen: list[bool] = []
    build = pipeline._new_reasoner

    def spy(directory: Path, sha: str) -> Reasoner:
        seen.append(gc.isenabled())
        reasoner = build(directory, sha)
        seen.append(gc.isenabled())
        return reasoner

    def broken(directory: Path, sha: str) -> Reasoner:
        raise RuntimeError("broken")

    monkeypatch.setattr(pipeline, "_new_reasoner", spy)
    was = gc.isenabled()
    try:
        if not enabled:
            gc.disable()
        reasoner = pipeline.prepare(directory)
        after = gc.isenabled()
        monkeypatch.setattr(pipeline, "_new_reasoner", broken)
        with pytest.raises(RuntimeError, match="broken"):
            pipeline.prepare(_rules(tmp_path / "other"))
        after_failing = gc.isenabled()
    finally:
        if was:
            gc.enable()
    assert seen == [False, False]
    assert after is after_failing is enabled
    # Prepared once: asked again, the same reasoner, not built again.
    assert pipeline.prepare(directory) is reasoner
    assert seen == [False, False]


def test_the_rulesets_texts_are_what_the_host_encodes_and_kept_in_the_cache(
        tmp_path: Path) -> None:
    # CompiledRuleBase.definition_texts is what durable-rules is given for
    # each ruleset; the host encodes a definition it has no text for itself,
    # and both must be the same text. The cache stores the texts with the
    # compiled rule base, so a hit does not encode them again.
    from calfrehab.engine.inference.durable_host import _dumps

    directory = _rules(tmp_path)
    compiled = _cached(directory)
    texts = compiled.definition_texts
    rulesets = compiled.rulesets("p")
    assert [f"p_{suffix}" for suffix in texts] == list(rulesets)
    for suffix, text in texts.items():
        definition = {rule: {k: v for k, v in body.items() if k != "run"}
                      for rule, body in rulesets[f"p_{suffix}"].items()}
        assert text == _dumps(definition)
    hit = cache.compiled_cached(directory, rulebase_sha256(directory), _never)
    assert vars(hit)["definition_texts"] == texts  # read, not encoded again
    assert hit == compiled


def test_pipeline_compiled_reads_the_cache_and_still_reports_bad_rules(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # pipeline.compiled is what a batch's parent uses to check the rules
    # and name their sha256 before its workers start.
    directory = _rules(tmp_path)
    first = pipeline.compiled(directory)
    assert first == pipeline.compile_rules(directory)
    monkeypatch.setattr(pipeline, "compile_rules", lambda *_: _never())
    assert pipeline.compiled(directory) == first  # from the cache: nothing compiled
    monkeypatch.undo()
    (directory / "ladder.yaml").write_text("exercises: [", encoding="utf-8")
    with pytest.raises(RuleError):
        pipeline.compiled(directory)


# Modules only reading and compiling rule files need (each a prefix).
_COMPILING = ("calfrehab.engine.knowledge.loader", "calfrehab.engine.knowledge.compiler",
              "calfrehab.engine.knowledge.durable_limits", "calfrehab.engine.knowledge.ruletext",
              "yaml")

_DECIDE = """
import json, sys
from calfrehab.engine import api
decided = api.decide_path(sys.argv[1], api.prepare(sys.argv[2]))
doc = decided.decision.model_dump(mode="json")
doc.pop("decision_id")
print(json.dumps([sorted(sys.modules), doc]))
"""


def test_a_cache_hit_loads_neither_the_loader_nor_the_compiler(tmp_path: Path) -> None:
    # The compiled rule base's types (knowledge/compiled.py,
    # knowledge/rulebase.py) are all a hit needs; the YAML loader and the
    # compiler are imported only to compile (issue 28 item 4, cold start).
    # Their names are still where they were.
    from calfrehab.engine.knowledge import compiled, compiler, loader, rulebase

    assert compiler.CompiledRuleBase is compiled.CompiledRuleBase
    assert (compiler.Instance, compiler.Disjunct) == (compiled.Instance, compiled.Disjunct)
    assert (compiler.SINK, compiler.TICK) == (compiled.SINK, compiled.TICK)
    assert (loader.RuleBase, loader.LocatedRule) == (rulebase.RuleBase, rulebase.LocatedRule)
    assert loader.rulebase_sha256 is rulebase.rulebase_sha256
    assert loader.default_rules_dir is rulebase.default_rules_dir
    directory = _rules(tmp_path)
    example = Path(__file__).resolve().parents[3] / "examples" / "runner-stuck-on-two-leg.json"

    def run() -> tuple[list[str], object]:
        out = subprocess.run([sys.executable, "-c", _DECIDE, str(example), str(directory)],
                             capture_output=True, text=True, check=True).stdout
        modules, doc = json.loads(out)
        return modules, doc

    missed, decided = run()
    assert [m for m in missed if m.startswith(_COMPILING)] != []  # compiled: not vacuous
    hit, decided_again = run()
    assert [m for m in hit if m.startswith(_COMPILING)] == []
    # Nor pickle.py: the C unpickler is read directly (the same function).
    assert "pickle" not in hit and "_pickle" in hit
    assert "calfrehab.engine.knowledge.compiled" in hit
    assert decided_again == decided


_WITHOUT_ACCELERATOR = """
import sys
sys.modules["_pickle"] = None  # as on an interpreter without CPython's accelerator
import pickle
from pathlib import Path
from calfrehab.engine.knowledge import cache
from calfrehab.engine.knowledge.rulebase import rulebase_sha256
assert vars(cache)["unpickle"] is pickle._loads  # pickle.py's own unpickler
directory = Path(sys.argv[1])
def never():
    raise AssertionError("compiled although the cache holds this rule base")
hit = cache.compiled_cached(directory, rulebase_sha256(directory), never)
print(sorted(hit.instances) == sorted(sys.argv[2].split(",")))
"""


def test_the_cache_reads_through_pickle_where_there_is_no_c_unpickler(tmp_path: Path) -> None:
    import pickle

    # CPython: the C unpickler, which pickle.loads is.
    assert vars(cache)["unpickle"] is pickle.loads
    directory = _rules(tmp_path)
    first = _cached(directory)
    out = subprocess.run([sys.executable, "-c", _WITHOUT_ACCELERATOR, str(directory),
                          ",".join(sorted(first.instances))],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True"
