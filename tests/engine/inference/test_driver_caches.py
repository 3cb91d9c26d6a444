"""The driver's caches (fact texts, asserted-fact heads, parsed action
messages) stay within their bounds however many cases a process decides,
and a cache cleared midway changes no firing and no document.

They are what grew in a long one-process batch: continuous values (load
ratios, limb symmetry, stiffness changes) keep turning up new keys, so a
cache that may hold every value ever seen grows with the batch (3,909
messages after 100,000 generated cases, against 1,671 after 10,000).
Counted in entries, not bytes.
"""

from __future__ import annotations

import itertools
import sys
from typing import Any

import pytest
from helpers import REPO

from calfrehab.engine.canonical import canonical_bytes
from calfrehab.engine.casefile.validation import validate_document
from calfrehab.engine.inference import durable_host, selection
from calfrehab.engine.inference.driver import Reasoner
from calfrehab.engine.inference.selection import Read, Texts

sys.path.insert(0, str(REPO / "benchmarks"))
import casegen
import driver_oracle

# What a one-process batch may keep of these caches, in entries each: a
# message with its parsed matches is about 1.4 KB, so a few MB in all.
FLAT_BUDGET = 4_096
# As many distinct values as the smaller batch of docs/performance.md (d).
MANY = 10_000


def _message(i: int) -> str:
    return ('{"some-rule#0":{"f0":{"sid":"r","n":"bent_knee.calf_load_bw_ratio","v":'
            + repr(i / 7) + "}}}")


def test_unique_action_messages_never_fill_the_cache_past_its_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(durable_host, "_MESSAGES", {})
    most = 0
    for i in range(MANY):
        rule, matched = durable_host._parse_action(_message(i), True)
        assert (rule, matched["f0"]["v"]) == ("some-rule#0", i / 7)
        most = max(most, len(durable_host._MESSAGES))
    assert most <= min(durable_host.MESSAGES_MAX, FLAT_BUDGET)
    # A clear forgets only what a lookup would have found: the last text is kept.
    assert _message(MANY - 1) in durable_host._MESSAGES


def test_unique_asserted_values_never_fill_the_heads_past_their_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(durable_host, "_HEADS", {})
    most = 0
    for i in range(MANY):
        head = durable_host._fact_head("x.ratio", i / 7)
        assert head == '{"n":"x.ratio","v":' + repr(i / 7) + ',"sid":'
        most = max(most, len(durable_host._HEADS))
    assert most <= min(durable_host.HEADS_MAX, FLAT_BUDGET)


def test_unique_fact_values_never_fill_a_rulesets_texts_past_their_bound() -> None:
    plan: list[Read] = [("bent_knee.calf_load_bw_ratio", False, False, None),
                        ("condition.kind", False, False, None)]
    texts: Texts = {}
    select = selection.selector(plan, "", texts)
    most = 0
    for i in range(MANY):
        out = select({"bent_knee.calf_load_bw_ratio": i / 7, "condition.kind": "rupture"},
                     ())
        assert out == ['"n":"bent_knee.calf_load_bw_ratio","v":' + repr(i / 7) + "}",
                       '"n":"condition.kind","v":"rupture"}']
        most = max(most, len(texts))
    assert most <= min(selection.TEXTS_MAX, FLAT_BUDGET)


def test_caches_cleared_again_and_again_change_no_firing_and_no_document(
    reasoner: Reasoner, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Clearing is now what a long batch does: with tiny bounds, so that
    every cache is cleared many times within a few cases, the default
    driver fires what the previous driver fires (no caches) and writes the
    same decision documents."""
    monkeypatch.setattr(durable_host, "MESSAGES_MAX", 8)
    monkeypatch.setattr(durable_host, "HEADS_MAX", 2)
    monkeypatch.setattr(selection, "TEXTS_MAX", 8)
    monkeypatch.setattr(durable_host, "_MESSAGES", {})
    monkeypatch.setattr(durable_host, "_HEADS", {})
    small = Reasoner(reasoner.compiled)  # its own texts, filled under the tiny bounds
    oracle = Reasoner(reasoner.compiled, reuse_states=False, matchable_only=False)
    sizes: list[int] = []
    for doc in casegen.generate_cases(60, seed=17):
        case = validate_document(doc, "<generated>")
        a, b = small.evaluate(case), oracle.evaluate(case)
        assert a.firings == b.firings, doc["case_id"]
        assert (canonical_bytes(driver_oracle._document(a, doc))
                == canonical_bytes(driver_oracle._document(b, doc))), doc["case_id"]
        held: dict[str, Any] = {"messages": durable_host._MESSAGES,
                                "heads": durable_host._HEADS, **small._texts}
        for name, cache in held.items():
            assert len(cache) <= (2 if name == "heads" else 8), name
        sizes.append(sum(len(t) for t in small._texts.values()))
    # The texts were cleared (and filled again) along the way.
    assert any(later < earlier for earlier, later in itertools.pairwise(sizes))
