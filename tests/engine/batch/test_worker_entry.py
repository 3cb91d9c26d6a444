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
from calfrehab.engine.batch.inputs import Item
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

