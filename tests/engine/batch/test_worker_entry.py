"""A worker's trail entry is the entry the trail would build from the
documents alone: the shortcuts it takes (the case's canonical bytes from
the parse, their sha256 from the decision) change no byte of it."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import REPO

from calfrehab.engine.batch import worker
from calfrehab.engine.batch.inputs import Bad, Item
from calfrehab.engine.canonical import canonical_bytes, sha256_hex
from calfrehab.engine.trail import codec
from calfrehab.engine.trail.prepared import prepare_entry


def _casegen() -> Any:
    spec = importlib.util.spec_from_file_location("casegen", REPO / "benchmarks" / "casegen.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def recording_worker() -> Iterator[None]:
    saved = worker._WORKER
    worker.init_worker(None, "csv", True, child=False)
    try:
        yield
    finally:
        worker._WORKER = saved


def test_a_workers_entry_equals_the_entry_built_from_the_documents(
    recording_worker: None,
) -> None:
    docs = list(_casegen().generate_cases(40, seed=11))
    for i, doc in enumerate(docs):
        data = json.dumps(doc, indent=1).encode("utf-8")  # not the canonical spelling
        result = worker.decide_item(Item(i, "cases.jsonl", i + 1, data))
        assert isinstance(result, worker.Good), result
        got = result.trail
        assert got is not None
        decision = json.loads(
            codec.decompress(got.decision_body, codec.shipped_dictionaries())
        )
        want = prepare_entry(decision, doc)
        assert got == want
        assert got.case_body_sha256 == sha256_hex(canonical_bytes(doc)) == got.case_sha256



def test_a_chunks_entries_compressed_together_equal_those_built_one_by_one(
    recording_worker: None, tmp_path: Any
) -> None:
    # decide_chunk compresses its entries after the chunk is decided
    # (compress_entries); each is still the entry prepare_entry builds from
    # the documents, and the trail records and verifies them.
    from calfrehab.engine.trail.audit import AuditTrail
    from calfrehab.engine.trail.prepared import is_compressed

    docs = list(_casegen().generate_cases(12, seed=5))
    items = [Item(i, "cases.jsonl", i + 1, json.dumps(d).encode("utf-8"))
             for i, d in enumerate(docs)]
    items.insert(4, Item(99, "cases.jsonl", 99, b"{not json"))
    results = worker.decide_chunk(items)
    assert [r.seq for r in results] == [i.seq for i in items]
    assert isinstance(results[4], Bad)
    goods = [r for r in results if isinstance(r, worker.Good)]
    assert len(goods) == 12
    entries = []
    for good, doc in zip(goods, docs, strict=True):
        got = good.trail
        assert got is not None and is_compressed(got)
        decision = json.loads(codec.decompress(got.decision_body, codec.shipped_dictionaries()))
        assert got == prepare_entry(decision, doc)
        entries.append(got)
    with AuditTrail(tmp_path / "t.sqlite3") as trail:
        assert trail.record_prepared(entries).recorded == 12
        assert trail.verify().ok


def test_a_decision_that_cannot_be_json_is_refused_in_the_trails_words(
    recording_worker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The worker serialises the decision itself (DecisionData's own canonical
    # bytes) and has to_canonical word the refusal, as prepare_entry words
    # the decision it serialises: one message, from one place.
    from calfrehab.engine.errors import AuditError, CanonicalJSONError
    from calfrehab.engine.explanation.document import DecisionData
    from calfrehab.engine.trail.prepared import to_canonical

    def refused(self: DecisionData) -> bytes:
        raise CanonicalJSONError("NaN is not JSON")

    doc = next(iter(_casegen().generate_cases(1, seed=3)))
    monkeypatch.setattr(DecisionData, "canonical_bytes", refused)
    result = worker.decide_item(Item(0, "cases.jsonl", 1, json.dumps(doc).encode("utf-8")))
    assert isinstance(result, Bad) and result.kind == "engine"
    assert result.message.startswith("decision document ")
    assert result.message.endswith(" cannot be stored as JSON: NaN is not JSON")
    with pytest.raises(AuditError) as caught:
        to_canonical({"x": float("nan")}, "decision document d-1")
    assert str(caught.value).startswith("decision document d-1 cannot be stored as JSON: ")
