"""Checkpoints and proofs (issue 27 item 3): RFC 6962's Merkle tree hash
over the entries, inclusion and consistency proofs, signed checkpoints,
and a trail cut short, rewritten or forked since a checkpoint."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from helpers import REPO
from test_trail_storage import pair, raw

from calfrehab.cli.main import cli
from calfrehab.engine.canonical import canonical_json
from calfrehab.engine.errors import OutputError
from calfrehab.engine.trail import merkle
from calfrehab.engine.trail.audit import AuditError, AuditTrail
from calfrehab.engine.trail.chain import entry_hash
from calfrehab.engine.trail.checkpoint import (
    check_checkpoints,
    check_proof,
    generate_key,
    load_private_key,
    load_public_key,
    make_checkpoint,
    prove,
    read_checkpoints,
    write_checkpoint,
)

# The test vectors of Certificate Transparency's reference implementation
# (google/certificate-transparency-go, merkle tree tests): leaf data and the
# tree head of the first 1..8 leaves; an inclusion and two consistency proofs.
CT_LEAVES = [bytes.fromhex(x) for x in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
    "606162636465666768696a6b6c6d6e6f")]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def _read(leaves: list[bytes]) -> Any:
    return lambda a, b: leaves[a:b]


def _reference_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 §2.1 as written: recursive."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + _reference_root(leaves[:k])
                          + _reference_root(leaves[k:])).digest()


# ------------------------------------------------------------------ merkle


def test_tree_hash_matches_the_certificate_transparency_vectors() -> None:
    assert merkle.tree_hash([]).hex() == hashlib.sha256(b"").hexdigest()
    for n in range(1, 9):
        assert merkle.tree_hash(CT_LEAVES[:n]).hex() == CT_ROOTS[n - 1]
    path = merkle.inclusion_proof(0, 8, _read(CT_LEAVES))
    assert [p.hex()[:8] for p in path] == ["96a296d2", "5f083f0a", "6b47aaf2"]
    assert [p.hex()[:8] for p in merkle.consistency_proof(6, 8, _read(CT_LEAVES))] == [
        "0ebc5d34", "ca854ea1", "d37ee418"]
    assert [p.hex()[:8] for p in merkle.consistency_proof(2, 5, _read(CT_LEAVES))] == [
        "5f083f0a", "bc1a0643"]


def test_every_proof_of_trees_up_to_40_leaves_verifies_and_a_changed_one_does_not() -> None:
    leaves = [hashlib.sha256(str(i).encode()).digest() for i in range(40)]
    for size in range(1, 41):
        root = merkle.tree_hash(leaves[:size])
        assert root == _reference_root(leaves[:size])
        assert merkle.prefix_roots(leaves, [size])[1][size] == root
        for index in range(size):
            path = merkle.inclusion_proof(index, size, _read(leaves))
            assert merkle.root_from_inclusion(index, size, leaves[index], path) == root
            assert merkle.root_from_inclusion(index, size, b"x" * 32, path) != root
            if path:
                bent = [path[0][:-1] + bytes([path[0][-1] ^ 1]), *path[1:]]
                assert merkle.root_from_inclusion(index, size, leaves[index], bent) != root
        for old in range(1, size + 1):
            proof = merkle.consistency_proof(old, size, _read(leaves))
            old_root = merkle.tree_hash(leaves[:old])
            assert merkle.verify_consistency(old, size, old_root, root, proof)
            if old < size:
                assert not merkle.verify_consistency(old, size, root, root, proof)
                assert not merkle.verify_consistency(old, size, old_root, old_root, proof)


def test_a_proof_of_the_wrong_length_is_refused() -> None:
    leaves = CT_LEAVES
    path = merkle.inclusion_proof(3, 8, _read(leaves))
    for wrong in (path[:-1], [*path, path[0]]):
        with pytest.raises(ValueError):
            merkle.root_from_inclusion(3, 8, leaves[3], wrong)
    with pytest.raises(ValueError):
        merkle.root_from_inclusion(8, 8, leaves[3], path)


# -------------------------------------------------------------- keys


def test_keygen_writes_an_owner_only_key_and_never_replaces_one(tmp_path: Path) -> None:
    private, public, kid = generate_key(tmp_path / "clinic.key")
    assert stat.S_IMODE(os.stat(private).st_mode) == 0o600
    assert public == tmp_path / "clinic.key.pub"
    assert len(kid) == 64
    load_private_key(private)
    load_public_key(public)
    before = private.read_bytes()
    with pytest.raises(OutputError, match="a key is never replaced"):
        generate_key(private)
    assert private.read_bytes() == before
    os.chmod(private, 0o644)
    with pytest.raises(AuditError, match="may be read by other users"):
        load_private_key(private)


# -------------------------------------------------------------- checkpoints


@pytest.fixture
def trail_and_key(tmp_path: Path) -> tuple[Path, Path]:
    path = tmp_path / "audit.sqlite3"
    with AuditTrail(path) as trail:
        for n in range(1, 8):
            trail.record(*pair(n))
        trail.override("dec-RUN-0002-2", "dr b", "why", "bent_knee", "hold")
    key, _, _ = generate_key(tmp_path / "clinic.key")
    return path, key


def _check(path: Path, log: Path, pinned: Path | None = None) -> Any:
    with AuditTrail(path, readonly=True) as trail:
        return check_checkpoints(trail, read_checkpoints(log),
                                 load_public_key(pinned) if pinned else None)


def test_a_checkpoint_signs_the_trails_head_and_root(trail_and_key: tuple[Path, Path]) -> None:
    path, key = trail_and_key
    log = path.with_name("checkpoints.jsonl")
    doc = write_checkpoint(path, key, log=log)
    with AuditTrail(path, readonly=True) as trail:
        assert (doc["tree_size"], doc["last_hash"]) == trail.head()
        leaves = [bytes.fromhex(e.entry_hash) for e in trail.entries()]
    assert doc["root_hash"] == merkle.tree_hash(leaves).hex()
    assert stat.S_IMODE(os.stat(log).st_mode) == 0o600
    with AuditTrail(path) as trail:
        trail.record(*pair(50))
    write_checkpoint(path, key, log=log)
    result = _check(path, log, key.with_name("clinic.key.pub"))
    assert (result.ok, result.checked, result.latest_size) == (True, 2, 9)


def test_a_trail_cut_short_since_a_checkpoint_fails(trail_and_key: tuple[Path, Path]) -> None:
    path, key = trail_and_key
    log = path.with_name("cp.jsonl")
    write_checkpoint(path, key, log=log)
    # The attack the chain alone misses (issue 27 item 3): the last entry
    # deleted and meta set to the entry before it.
    with raw(path) as conn:
        prev = conn.execute("SELECT entry_hash FROM entries WHERE seq = 7").fetchone()[0]
        conn.execute("DELETE FROM entries WHERE seq = 8")
        conn.execute("UPDATE meta SET value = 7 WHERE key = 'entry_count'")
        conn.execute("UPDATE meta SET value = ? WHERE key = 'last_hash'", (prev,))
    with AuditTrail(path, readonly=True) as trail:
        assert trail.verify().ok  # the chain alone cannot tell
    result = _check(path, log)
    assert not result.ok and "cut short" in str(result.problem)
    assert "signed 8 entries, the trail has 7" in str(result.problem)


def test_a_trail_rewritten_since_a_checkpoint_fails(trail_and_key: tuple[Path, Path]) -> None:
    path, key = trail_and_key
    log = path.with_name("cp.jsonl")
    write_checkpoint(path, key, log=log)
    # An entry edited and every later hash recomputed, meta updated: the
    # chain verifies, the checkpoint does not.
    with raw(path) as conn:
        names = [d[1] for d in conn.execute("PRAGMA table_info(entries)")]
        rows = [dict(zip(names, r, strict=True))
                for r in conn.execute("SELECT * FROM entries ORDER BY seq")]
        prev = "0" * 64
        for row in rows:
            if row["seq"] == 3:
                row["clinician"] = "someone else"
            row["prev_hash"] = prev
            row["entry_hash"] = prev = entry_hash(row)
            conn.execute("UPDATE entries SET clinician = ?, prev_hash = ?, entry_hash = ? "
                         "WHERE seq = ?", (row["clinician"], row["prev_hash"],
                                          row["entry_hash"], row["seq"]))
        conn.execute("UPDATE meta SET value = ? WHERE key = 'last_hash'", (prev,))
    with AuditTrail(path, readonly=True) as trail:
        assert trail.verify().ok
    result = _check(path, log)
    assert not result.ok and "rewritten or forked" in str(result.problem)


def test_a_forked_trail_fails_the_other_forks_checkpoint(
        trail_and_key: tuple[Path, Path]) -> None:
    path, key = trail_and_key
    fork = path.with_name("fork.sqlite3")
    shutil.copyfile(path, fork)
    with AuditTrail(path) as trail:
        trail.record(*pair(60))
    with AuditTrail(fork) as trail:
        trail.record(*pair(61))
    log = path.with_name("cp.jsonl")
    write_checkpoint(path, key, log=log)
    assert _check(path, log).ok
    result = _check(fork, log)
    assert not result.ok and "rewritten or forked" in str(result.problem)


def test_a_checkpoint_of_another_trail_or_key_or_altered_is_refused(
        trail_and_key: tuple[Path, Path], tmp_path: Path) -> None:
    path, key = trail_and_key
    out = tmp_path / "one.json"
    doc = write_checkpoint(path, key, out=out)
    with pytest.raises(OutputError, match="exists"):
        write_checkpoint(path, key, out=out)
    other = tmp_path / "other.sqlite3"
    with AuditTrail(other) as trail:
        for n in range(1, 9):
            trail.record(*pair(n))
    result = _check(other, out)
    assert not result.ok and "another trail" in str(result.problem)
    _, other_pub, _ = generate_key(tmp_path / "other.key")
    result = _check(path, out, other_pub)
    assert not result.ok and "not the pinned key" in str(result.problem)
    for field, value in (("tree_size", 7), ("timestamp", "2020-01-01T00:00:00.000000Z")):
        altered = tmp_path / f"altered-{field}.json"
        altered.write_text(canonical_json({**doc, field: value}), encoding="utf-8")
        with pytest.raises(AuditError, match="signature does not verify"):
            read_checkpoints(altered)


# ------------------------------------------------------------------ proofs


def test_an_inclusion_proof_is_checked_without_the_trail(
        trail_and_key: tuple[Path, Path]) -> None:
    path, key = trail_and_key
    with AuditTrail(path, readonly=True) as trail:
        head = make_checkpoint(trail, load_private_key(key))
        proofs = [prove(trail, seq, head) for seq in range(1, 9)]
    path.unlink()  # the auditor has no trail
    public = load_public_key(key.with_name("clinic.key.pub"))
    for proof in proofs:
        assert check_proof(json.loads(json.dumps(proof)), pinned=public)["ok"]
    proof = proofs[2]
    altered = {**proof, "entry": {**proof["entry"], "clinician": "someone else"}}
    with pytest.raises(AuditError, match="do not hash to the entry_hash"):
        check_proof(altered)
    moved = {**proof, "seq": 4, "entry": {**proof["entry"], "seq": 4}}
    with pytest.raises(AuditError):
        check_proof(moved)
    swapped = {**proof, "audit_path": list(reversed(proof["audit_path"]))}
    with pytest.raises(AuditError, match="another root"):
        check_proof(swapped)


# --------------------------------------------------------- verify and CLI


def test_verify_checks_the_dictionaries(trail_and_key: tuple[Path, Path]) -> None:
    path, _ = trail_and_key
    with raw(path) as conn:
        conn.execute("DROP TRIGGER IF EXISTS dictionaries_no_update")
        conn.execute("UPDATE dictionaries SET sha256 = ? "
                     "WHERE id = (SELECT min(id) FROM dictionaries)", ("0" * 64,))
    with AuditTrail(path, readonly=True) as trail:
        report = trail.verify()
    assert not report.ok and "compression dictionary" in str(report.problem)


def test_the_commands_from_keygen_to_check_proof(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"CALFREHAB_AUDIT": str(tmp_path / "audit.sqlite3")}

    def run(*args: str) -> Any:
        return runner.invoke(cli, list(args), env=env)

    with AuditTrail(tmp_path / "audit.sqlite3") as trail:
        for n in range(1, 4):
            trail.record(*pair(n))
    key = str(tmp_path / "k.key")
    assert run("audit", "keygen", key).exit_code == 0
    log = str(tmp_path / "cp.jsonl")
    made = run("audit", "checkpoint", "--key", key, "--log", log)
    assert made.exit_code == 0, made.output
    assert "checkpoint of 3 entries" in made.output
    ok = run("audit", "verify", "--checkpoint", log, "--public-key", key + ".pub")
    assert ok.exit_code == 0 and "1 checkpoint hold" in ok.output, ok.output
    proof = tmp_path / "proof.json"
    assert run("audit", "prove", "2", "--checkpoint", log, "--out", str(proof)).exit_code == 0
    checked = run("audit", "check-proof", str(proof), "--public-key", key + ".pub")
    assert checked.exit_code == 0 and "entry seq 2" in checked.output, checked.output
    with raw(tmp_path / "audit.sqlite3") as conn:  # issue 27's cut: entry, case and meta
        prev = conn.execute("SELECT entry_hash FROM entries WHERE seq = 2").fetchone()[0]
        conn.execute("DROP TRIGGER cases_no_delete")
        conn.execute("DELETE FROM cases WHERE sha256 = "
                     "(SELECT case_body_sha256 FROM entries WHERE seq = 3)")
        conn.execute("DELETE FROM entries WHERE seq = 3")
        conn.execute("UPDATE meta SET value = 2 WHERE key = 'entry_count'")
        conn.execute("UPDATE meta SET value = ? WHERE key = 'last_hash'", (prev,))
    assert run("audit", "verify").exit_code == 0  # the chain alone
    cut = run("audit", "verify", "--checkpoint", log)
    assert cut.exit_code == 1 and "cut short" in cut.output, cut.output
    assert "Traceback" not in cut.output


def test_batch_appends_a_checkpoint_after_its_run(tmp_path: Path) -> None:
    runner = CliRunner()
    trail = tmp_path / "audit.sqlite3"
    env = {"CALFREHAB_AUDIT": str(trail)}
    key = str(tmp_path / "k.key")
    assert runner.invoke(cli, ["audit", "keygen", key]).exit_code == 0
    log = tmp_path / "cp.jsonl"
    examples = REPO / "examples" / "batch"
    for n in (1, 2):
        result = runner.invoke(cli, ["batch", str(examples), "-o", str(tmp_path / f"o{n}.jsonl"),
                                     "-j", "1", "--checkpoint-log", str(log),
                                     "--checkpoint-key", key], env=env)
        assert result.exit_code == 0, result.output
    heads = read_checkpoints(log)
    with AuditTrail(trail, readonly=True) as opened:
        count, last = opened.head()
        assert check_checkpoints(opened, heads).ok
    assert [h["tree_size"] for h in heads] == [count // 2, count]
    assert heads[-1]["last_hash"] == last
    refused = runner.invoke(cli, ["batch", str(examples), "-o", str(tmp_path / "o3.jsonl"),
                                  "--checkpoint-log", str(log)], env=env)
    assert refused.exit_code == 2 and "--checkpoint-key" in refused.output
