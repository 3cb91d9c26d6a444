"""The checked copy of the contract's examples (tests/contract/) is the
contract: equal to ../shared/examples when that is beside the checkout, and
intact (its recorded hashes) when it is not. In CI a missing ../shared is a
failure: a CI run must check the copy against the contract itself."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from helpers import CONTRACT_COPY, SHARED_EXAMPLES, in_ci

REFRESH = ("refresh it: cp ../shared/examples/* tests/contract/examples/ && "
           "(cd tests/contract/examples && sha256sum * > ../examples.sha256)")


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_the_copy_matches_its_recorded_hashes() -> None:
    recorded = {}
    for line in (CONTRACT_COPY.parent / "examples.sha256").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        recorded[name.lstrip("*")] = digest
    actual = {name: hashlib.sha256(data).hexdigest()
              for name, data in _files(CONTRACT_COPY).items()}
    assert actual == recorded, f"tests/contract/examples changed by hand; {REFRESH}"
    assert "invalid-case.json" in actual and len(actual) >= 6


def test_the_copy_equals_the_shared_contract() -> None:
    if not SHARED_EXAMPLES.is_dir():
        if in_ci():
            pytest.fail(f"../shared/examples is missing at {SHARED_EXAMPLES}: in CI the "
                        "copy must be checked against the contract itself")
        # A clone on its own: the copy is all there is, checked by its hashes
        # in the test above; there is nothing else to compare it with.
        return
    shared, copy = _files(SHARED_EXAMPLES), _files(CONTRACT_COPY)
    assert sorted(shared) == sorted(copy), f"the contract's example files changed; {REFRESH}"
    drifted = [name for name in shared if shared[name] != copy[name]]
    assert drifted == [], f"differs from ../shared/examples: {drifted}; {REFRESH}"
