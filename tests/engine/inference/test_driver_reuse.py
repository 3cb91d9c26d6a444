"""One durable state per ruleset, reused by every case, on by default where
durable-rules can retract safely.

durable-rules 2.0.28 as published corrupts memory when it retracts the facts
of a rule that has fired (scripts/durable_patch.py); scripts/dev.py builds it
with calfrehab's fix, and the driver reuses states only on that build. These
tests hold on either build: the default driver (reused states on the fixed
build, a state per case on the plain one) against the previous driver, the
oracle; and the reused states' own mechanics on a handful of cases.
"""

from __future__ import annotations

import importlib.metadata
import json
import sys
from typing import Any

import pytest
from helpers import REPO

from calfrehab.engine import api
from calfrehab.engine.canonical import canonical_bytes
from calfrehab.engine.casefile.validation import validate_document
from calfrehab.engine.errors import EngineError
from calfrehab.engine.inference import durable_host
from calfrehab.engine.inference.driver import Reasoner

sys.path.insert(0, str(REPO / "benchmarks"))
import casegen
import driver_oracle

sys.path.insert(0, str(REPO / "scripts"))
import durable_patch


@pytest.fixture(scope="module")
def oracle(reasoner: Reasoner) -> Reasoner:
    return Reasoner(reasoner.compiled, reuse_states=False, matchable_only=False)


@pytest.fixture(scope="module")
def reused(reasoner: Reasoner) -> Reasoner:
    return Reasoner(reasoner.compiled, reuse_states=True)


def _doc(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((REPO / "examples" / name).read_text())
    return doc


def test_states_are_reused_by_default_exactly_where_retraction_is_safe(
    reasoner: Reasoner,
) -> None:
    version = importlib.metadata.version("durable-rules")
    fixed = version.partition("+")[2].startswith(durable_host.PATCHED_LABEL)
    assert durable_host.retract_safe() is fixed
    assert Reasoner(reasoner.compiled).reuse_states is fixed
    # The engine every front end uses (pipeline.prepare) is the default one.
    assert reasoner.reuse_states is fixed
    # The label dev.py builds is the one the driver looks for.
    assert durable_patch.LOCAL_LABEL.startswith(durable_host.PATCHED_LABEL)


@pytest.mark.parametrize(("installed", "safe"), [
    ("2.0.28", False),                 # as published: a state per case
    ("2.0.28+calfrehab.1", True),      # scripts/dev.py's build
    ("2.0.28+calfrehab.2", True),      # a later revision of the same fix
    ("2.0.28+debian.1", False),        # someone else's build: not known fixed
    ("2.0.29", False),                 # a release nobody here has read
    (None, False),                     # not installed as a distribution
])
def test_only_the_fixed_build_reuses_states(
    reasoner: Reasoner, monkeypatch: pytest.MonkeyPatch, installed: str | None, safe: bool,
) -> None:
    """The fallback, which a machine with the fixed build never takes on
    its own: the installed version's label alone decides, and a driver
    made without saying gets a state per case on anything else."""
    def version(name: str) -> str:
        assert name == "durable-rules"
        if installed is None:
            raise importlib.metadata.PackageNotFoundError(name)
        return installed

    monkeypatch.setattr(importlib.metadata, "version", version)
    durable_host.retract_safe.cache_clear()  # it reads the version once
    try:
        assert durable_host.retract_safe() is safe
        assert Reasoner(reasoner.compiled).reuse_states is safe
    finally:
        monkeypatch.undo()
        durable_host.retract_safe.cache_clear()


def test_each_change_fits_its_text_once_and_a_patched_source_is_refused(tmp_path: Any) -> None:
    """Each change must find its text exactly once; a source that differs is
    refused whole rather than half patched."""
    for name, old, _ in durable_patch.PATCHES:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        text = path.read_text() if path.exists() else ""
        path.write_text(text + "/* before */\n" + old + "/* after */\n")
    durable_patch.patch(tmp_path)
    for name, old, new in durable_patch.PATCHES:
        text = (tmp_path / name).read_text()
        assert new in text and (old not in text or old in new)
    with pytest.raises(SystemExit, match="not there exactly once"):
        durable_patch.patch(tmp_path)


def test_a_source_the_patch_does_not_fit_is_left_as_it_was(tmp_path: Any) -> None:
    """Every change but the last matches: nothing is written (state.c is
    not left fixed under the plain version, which the driver would take for
    the unfixed build, nor the other way round)."""
    for name, old, _ in durable_patch.PATCHES[:-1]:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        text = path.read_text() if path.exists() else ""
        path.write_text(text + old)
    last = tmp_path / durable_patch.PATCHES[-1][0]
    last.parent.mkdir(parents=True, exist_ok=True)
    last.write_text("    version = '2.0.29',\n")
    before = {p: p.read_text() for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(SystemExit, match="not there exactly once"):
        durable_patch.patch(tmp_path)
    assert {p: p.read_text() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_generated_cases_fire_as_the_oracle_does(
    reasoner: Reasoner, oracle: Reasoner,
) -> None:
    """Seed 5 is the one whose first 2,000 cases crashed the plain
    durable-rules on a reused state (a segmentation fault before case
    2,000): on the fixed build the default driver reuses its states over
    all of them, firing exactly what the previous driver fires."""
    default = Reasoner(reasoner.compiled)
    n = 0
    for doc in casegen.generate_cases(2000, seed=5):
        case = validate_document(doc, "<generated>")
        a, b = default.evaluate(case), oracle.evaluate(case)
        assert a.firings == b.firings, doc["case_id"]
        assert (a.outcome, a.tracks, a.flags) == (b.outcome, b.tracks, b.flags), doc["case_id"]
        n += 1
    assert n == 2000
    if default.reuse_states:
        for ruleset in default.ruleset_names:
            assert default.host.facts_held(ruleset, default.sid) == [], ruleset


def test_a_reused_state_holds_no_fact_between_cases(
    reused: Reasoner, oracle: Reasoner,
) -> None:
    docs = list(casegen.generate_cases(40, seed=21))
    for doc in docs:
        case = validate_document(doc, "<generated>")
        assert reused.evaluate(case).firings == oracle.evaluate(case).firings
        for ruleset in reused.ruleset_names:
            assert reused.host.facts_held(ruleset, reused.sid) == [], (doc["case_id"], ruleset)


@pytest.mark.parametrize("kill", [KeyboardInterrupt, ValueError])
def test_a_case_killed_inside_an_action_leaves_the_state_clean(
    reused: Reasoner, oracle: Reasoner, monkeypatch: pytest.MonkeyPatch,
    kill: type[BaseException],
) -> None:
    doc = _doc("runner-stuck-on-two-leg.json")
    case = api.validate_document(doc)
    before = reused.evaluate(case)
    expected = driver_oracle._document(oracle.evaluate(case), doc)
    original = Reasoner._on_fire
    held: list[Any] = []

    def killed(self: Reasoner, ctx: Any, target: Any, *args: Any) -> None:
        original(self, ctx, target, *args)
        if len(ctx.hits) == 3:
            held.extend(self.host.facts_held(f"{self.prefix}_s{ctx.stratum}", self.sid))
            raise kill("killed midway")

    monkeypatch.setattr(Reasoner, "_on_fire", killed)
    # An interrupt stays what it is; an error from a rule names the rule.
    with pytest.raises(KeyboardInterrupt if kill is KeyboardInterrupt else EngineError):
        reused.evaluate(case)
    monkeypatch.undo()
    assert held, "the state held the case's facts while it ran"
    for ruleset in reused.ruleset_names:
        assert reused.host.facts_held(ruleset, reused.sid) == [], ruleset
    # The next case on the rebuilt state: the same firings and the same
    # decision document as before the kill and as the oracle.
    again = reused.evaluate(case)
    assert again.firings == before.firings
    assert canonical_bytes(driver_oracle._document(again, doc)) == canonical_bytes(expected)
