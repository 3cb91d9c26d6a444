"""The views of a compiled rule base (knowledge/views.py) and its lazily
loaded rule-language objects (knowledge/compiled.py): a cold ``next`` that
finds the compiled rules in the cache imports no rule language, while every
view equals what it is made from and everything else still sees the full
rule base. Module sets are counted, never time (benchmarks/run.py times)."""

from __future__ import annotations

import json
import os
import pickle
import re
import tempfile
from pathlib import Path
from typing import Any

from helpers import next_then, python_output, rules_dir_with

import calfrehab
from calfrehab.engine import pipeline
from calfrehab.engine.knowledge import cache
from calfrehab.engine.knowledge.compiled import CompiledRuleBase, Instance
from calfrehab.engine.knowledge.loader import default_rules_dir, rulebase_sha256
from calfrehab.engine.knowledge.views import PrescribeView

ROOT = Path(calfrehab.__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "runner-stuck-on-two-leg.json"

# A rule base of its own: a prescribe rule with cues and replaced fields, a
# rule with a reason and two sources, a derived flag.
EXTRA = """\
rules:
  - id: views-flag
    title: A flag for the views test
    rationale: A rule that only asserts a flag, for the views test.
    sources: [silbernagel2007, alfredson1998]
    applies_to: {tracks: [straight_knee, bent_knee]}
    priority: 7
    when: {fact: track.pain_during_last, op: ">=", value: 0}
    then: {assert: track.views_flag}
    reason: "The views test's flag, pain {track.pain_during_last}"
  - id: views-cue
    title: A cue for the views test
    rationale: A prescribe rule with cues and a tempo, for the views test.
    sources: [silbernagel2007]
    applies_to: {tracks: [straight_knee]}
    phase: prescribe
    priority: 3
    when: {fact: track.views_flag, op: "==", value: true}
    then: {prescribe: {tempo: "3-0-3", cues: [slowly, "all the way up"]}}
"""


def _new(cls: type[object]) -> object:
    return object.__new__(cls)


def _cached(directory: Path) -> CompiledRuleBase:
    return cache.compiled_cached(directory, rulebase_sha256(directory),
                                 lambda: pipeline.compile_rules(directory))


def _hit(directory: Path) -> CompiledRuleBase:
    _cached(directory)  # the first fills the cache
    [path] = cache.cache_dir().glob("*.pickle")
    key, compiled = pickle.loads(path.read_bytes())
    assert key == path.stem and isinstance(compiled, CompiledRuleBase)
    return compiled


def _rules(tmp_path: Path, own: bool) -> Path:
    if own:
        return rules_dir_with(tmp_path, {"views.yaml": EXTRA}).resolve()
    return default_rules_dir()


def _assert_views_match(compiled: CompiledRuleBase) -> None:
    base = compiled.base
    assert compiled.sha256 == base.sha256
    assert compiled.version == base.version == base.manifest.version
    assert compiled.ladder is base.ladder
    m = compiled.manifest_view
    assert (m.name, m.version, m.window_sessions, m.stiffness_window_days) == (
        base.manifest.name, base.manifest.version, base.manifest.settings.window_sessions,
        base.manifest.settings.stiffness_window_days)
    assert compiled.source_views.keys() == base.sources.keys()
    for key, source in base.sources.items():
        view = compiled.source_views[key]
        assert (view.citation, view.short, view.note) == (source.citation, source.short,
                                                          source.note)
        assert compiled.citation(key) == base.citation(key)
    for inst in compiled.instances.values():
        rule, v = inst.rule, inst.view
        assert any(rule is lr.rule for lr in base.rules)
        assert (v.id, v.title, v.reason, v.priority, v.phase, list(v.sources)) == (
            rule.id, rule.title, rule.reason, rule.priority, rule.phase, rule.sources)
        then = rule.then
        assert (v.decision, v.rung, v.refer, v.asserts) == (
            then.decision, then.rung, then.refer, then.assert_)
        if then.prescribe is None:
            assert v.prescribe is None
        else:
            p = then.prescribe
            assert v.prescribe == PrescribeView((p.range, p.surface, p.tempo, p.frequency,
                                                 tuple(p.cues)))
            assert (v.prescribe.range, v.prescribe.surface, v.prescribe.tempo,
                    v.prescribe.frequency, list(v.prescribe.cues)) == (
                p.range, p.surface, p.tempo, p.frequency, p.cues)
        assert inst.phase == rule.phase


def test_every_view_equals_what_it_is_made_from(tmp_path: Path) -> None:
    for own in (False, True):
        (tmp_path / str(own)).mkdir()
        directory = _rules(tmp_path / str(own), own)
        fresh = pipeline.compile_rules(directory)
        _assert_views_match(fresh)
        if own:
            cue = fresh.instances["views-cue@straight_knee"].view
            assert cue.prescribe == PrescribeView((None, None, "3-0-3", None,
                                                   ("slowly", "all the way up")))
            assert cue.prescribe is not None and cue.prescribe.tempo == "3-0-3"
            assert fresh.instances["views-flag@bent_knee"].view.sources == (
                "silbernagel2007", "alfredson1998")
        # From the cache: the views are the stored ones, the rest loads
        # on first use and is what compiling gives.
        for old in cache.cache_dir().glob("*") if cache.cache_dir().exists() else []:
            old.unlink()
        hit = _hit(directory)
        assert "base" not in vars(hit)
        assert [k for k, i in hit.instances.items() if "rule" in vars(i)] == []
        assert [i.view for i in hit.instances.values()] == [
            i.view for i in fresh.instances.values()]
        assert hit.source_views == fresh.source_views
        assert hit.manifest_view == fresh.manifest_view
        _assert_views_match(hit)
        assert hit == fresh


def test_a_rule_loads_the_whole_base_once_and_pickling_keeps_it(tmp_path: Path) -> None:
    directory = _rules(tmp_path, True)
    fresh = pipeline.compile_rules(directory)
    hit = _hit(directory)
    inst = hit.instances["views-cue@straight_knee"]
    assert inst.rule == fresh.instances["views-cue@straight_knee"].rule
    # One load for all: the base and every other rule are there now, shared.
    assert "base" in vars(hit)
    assert all("rule" in vars(i) for i in hit.instances.values())
    by_id = {lr.rule.id: lr.rule for lr in hit.base.rules}
    assert all(i.rule is by_id[i.rule.id] for i in hit.instances.values())
    # Pickled again, loaded or not (batch workers), it is the same.
    unloaded = _hit(directory)
    for compiled in (fresh, hit, unloaded):
        again = pickle.loads(pickle.dumps(compiled))
        assert again == fresh
        assert again.base.directory == directory
        assert again.definition_texts == fresh.definition_texts
    assert "base" not in vars(unloaded)  # pickling did not load it
    # An instance pickled on its own is whole.
    alone = pickle.loads(pickle.dumps(_hit(directory).instances["views-cue@straight_knee"]))
    assert isinstance(alone, Instance) and alone.rule == inst.rule
    assert alone == fresh.instances["views-cue@straight_knee"]


def test_an_entry_of_the_eager_layout_means_compiling_afresh(tmp_path: Path) -> None:
    # Before the views, a compiled rule base was pickled whole (its
    # __dict__). Such an entry under today's key (only a clock or a copy
    # brings one back: the key covers the code) is compiled afresh, never a
    # crash on a missing view.
    directory = _rules(tmp_path, False)
    expected = _cached(directory)
    [path] = cache.cache_dir().glob("*.pickle")

    class Eager(pickle.Pickler):
        def reducer_override(self, obj: object) -> Any:
            # As a dataclass pickles by default: its class, then its __dict__.
            if type(obj) is CompiledRuleBase:
                return _new, (CompiledRuleBase,), dict(vars(obj))
            if type(obj) is Instance:
                return _new, (Instance,), {
                    k: v for k, v in vars(obj).items() if k != "view"}
            return NotImplemented

    with path.open("wb") as handle:
        Eager(handle, protocol=pickle.HIGHEST_PROTOCOL).dump((path.stem, expected))
    assert cache._read(path, path.stem) is None
    assert _cached(directory) == expected
    assert cache.compiled_cached(directory, rulebase_sha256(directory),
                                 pipeline.compile_rules) == expected


def test_next_with_its_rules_cached_imports_no_rule_language() -> None:
    code = next_then(
        EXAMPLE,
        "print('MODULES' + json.dumps(sorted(sys.modules)))\n",
        before="import json, sys\n",
    )
    env = dict(os.environ)
    env["XDG_CACHE_HOME"] = tempfile.mkdtemp()  # a cache of its own: the first run fills it
    first = python_output(code, env)
    second = python_output(code, env)
    assert "PROGRESS" in second
    # The same text either way (but the decision's id).
    assert re.sub("decision [0-9a-f]{32}", "", first.rpartition("MODULES")[0]) == re.sub(
        "decision [0-9a-f]{32}", "", second.rpartition("MODULES")[0])
    missed = json.loads(first.rpartition("MODULES")[2])
    hit = json.loads(second.rpartition("MODULES")[2])
    rulelang = "calfrehab.engine.knowledge.rulelang"
    assert rulelang in missed  # the first compiled: the check is not vacuous
    assert rulelang not in hit
    assert "calfrehab.engine.knowledge.loader" not in hit
    assert "calfrehab.engine.knowledge.views" in hit


def test_threads_asking_at_once_all_get_the_one_loaded_base(tmp_path: Path) -> None:
    # The server decides in threads: each must find the whole base, the
    # same one, whichever asks first (knowledge/compiled.py loads it once,
    # under a lock).
    import threading

    directory = _rules(tmp_path, False)
    hit = _hit(directory)
    key = next(iter(hit.instances))
    seen: list[object] = []
    start = threading.Barrier(8)

    def ask(i: int) -> None:
        start.wait()
        seen.append(hit.base if i % 2 else hit.instances[key].rule)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 8
    assert {id(s) for s in seen if s.__class__.__name__ == "RuleBase"} == {id(hit.base)}
    assert {id(s) for s in seen if s.__class__.__name__ == "Rule"} == {
        id(hit.instances[key].rule)}
