"""Format 4 of the audit trail (issue 28): documents stored as zstd frames
(RFC 8878) with the preset dictionaries, named by a skippable frame; zlib
streams (formats 2 and 3) still read; a format-3 trail appended to with
zlib until `audit migrate` recompresses it, every hash and a signed
checkpoint holding across the migration."""

from __future__ import annotations

import shutil
import sqlite3
import zlib
from pathlib import Path
from typing import Any

import pytest
import zstandard
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from test_trail_storage import pair, raw
from test_trail_v3 import ASKED, PROGRAM

from calfrehab.cli.main import cli
from calfrehab.engine.audit.views import accept_decision, override_decision
from calfrehab.engine.trail import codec
from calfrehab.engine.trail.audit import AuditError, AuditTrail
from calfrehab.engine.trail.checkpoint import (
    check_checkpoints,
    generate_key,
    read_checkpoints,
    write_checkpoint,
)
from calfrehab.engine.trail.codec import CodecError
from calfrehab.engine.trail.migrate import migrate
from calfrehab.engine.trail.prepared import prepare_entry

# A trail written by calfrehab in format 3 (zlib documents): four decisions
# (one with a requester), an override and an acceptance; and the head
# `audit verify` printed for it then.
V3_TRAIL = Path(__file__).parent / "trail_v3.sqlite3"
V3_HEAD = (6, "92042887dcc158a7597d567f71c5870674f658bee36f1d72314befc95569d1b9")

SHIPPED = codec.shipped_dictionaries()
DOC = b'{"case_id":"RUN-0001","review_date":"2026-11-20","sessions":[' + b"1," * 300 + b"2]}"


@pytest.fixture
def v3(tmp_path: Path) -> Path:
    target = tmp_path / "v3.sqlite3"
    shutil.copyfile(V3_TRAIL, target)
    return target


def _blobs(path: Path) -> list[bytes]:
    conn = sqlite3.connect(path)
    try:
        return [bytes(b) for (b,) in conn.execute(
            "SELECT decision_body FROM entries UNION ALL SELECT body FROM cases")]
    finally:
        conn.close()


# ------------------------------------------------------------------ codec


def test_a_zstd_document_is_a_skippable_frame_naming_its_dictionary_then_a_frame() -> None:
    for kind in ("case", "decision"):
        blob = codec.compress(kind, DOC)
        dict_id = zlib.adler32(codec._dictionary(kind))
        assert blob[:4] == (0x184D2A50).to_bytes(4, "little")
        assert blob[4:8] == (4).to_bytes(4, "little")
        assert blob[8:12] == dict_id.to_bytes(4, "little")
        assert codec.dictionary_id(blob) == dict_id
        # The data frame is a standard zstd frame: the library reads it
        # with the raw dictionary, and it states its size.
        frame = blob[12:]
        assert zstandard.get_frame_parameters(frame).content_size == len(DOC)
        loaded = zstandard.ZstdCompressionDict(
            codec._dictionary(kind), dict_type=zstandard.DICT_TYPE_RAWCONTENT)
        assert zstandard.ZstdDecompressor(dict_data=loaded).decompress(frame) == DOC
        assert codec.decompress(blob, SHIPPED) == DOC


def test_zlib_streams_still_read_and_are_told_apart() -> None:
    for kind in ("case", "decision"):
        old = codec.compress(kind, DOC, "zlib")
        assert not codec.is_zstd(old) and codec.is_zstd(codec.compress(kind, DOC))
        assert codec.dictionary_id(old) == zlib.adler32(codec._dictionary(kind))
        assert codec.decompress(old, SHIPPED) == DOC
    # with no dictionary at all, either codec
    assert codec.decompress(zlib.compress(DOC), {}) == DOC
    assert codec.decompress(zstandard.ZstdCompressor().compress(DOC), {}) == DOC


def test_format_3_writes_zlib_and_format_4_zstd() -> None:
    assert (codec.codec_for(3), codec.codec_for(4)) == ("zlib", "zstd")


def _doctored() -> dict[str, bytes]:
    blob = codec.compress("decision", DOC)
    unknown = blob[:8] + (0x01020304).to_bytes(4, "little") + blob[12:]
    plain = zstandard.ZstdCompressor(write_content_size=True).compress(b"x" * 1000)
    huge = bytearray(zstandard.ZstdCompressor(write_content_size=True).compress(b"x" * 1000))
    return {
        "cut in the dictionary frame": blob[:7],
        "cut in the frame header": blob[:14],
        "cut in the data": blob[:-5],
        "bytes after its end": blob + b"\x00",
        "a second frame after it": blob + blob[12:],
        "dictionary frame of another size": blob[:4] + (8).to_bytes(4, "little") + blob[8:],
        "no frame after the dictionary frame": blob[:12] + b"not zstd",
        "unknown dictionary": unknown,
        "empty": b"",
        "neither codec": b"{}",
        "frame stating a size past the cap": _with_content_size(bytes(huge), plain),
    }


def _with_content_size(_: bytes, plain: bytes) -> bytes:
    # A single-segment frame whose 8-byte Frame_Content_Size says 1 TB:
    # the header is rewritten, the cap must refuse it before decoding.
    params = zstandard.get_frame_parameters(plain)
    assert params.content_size == 1000
    descriptor = plain[4]
    fcs_flag = descriptor >> 6
    single = descriptor >> 5 & 1
    window = 0 if single else 1
    fcs_len = {0: single, 1: 2, 2: 4, 3: 8}[fcs_flag]
    start = 5 + window
    new_descriptor = (3 << 6) | (descriptor & 0x3F)
    return (plain[:4] + bytes([new_descriptor]) + plain[5:start]
            + (1 << 40).to_bytes(8, "little") + plain[start + fcs_len:])


@pytest.mark.parametrize("what", sorted(_doctored()))
def test_a_doctored_zstd_document_is_a_clean_codec_error(what: str) -> None:
    blob = _doctored()[what]
    with pytest.raises(CodecError) as info:
        codec.decompress(blob, SHIPPED)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    expected = {
        "unknown dictionary": "dictionary 01020304, which the trail does not hold",
        "bytes after its end": "bytes after its end",
        "a second frame after it": "bytes after its end",
        "frame stating a size past the cap": f"larger than {codec.MAX_DOCUMENT_BYTES}",
        "cut in the data": "cut short",
        "cut in the dictionary frame": "cut short",
    }.get(what)
    if expected is not None:
        assert expected in message


def test_a_bomb_without_a_stated_size_stops_at_the_cap() -> None:
    packer = zstandard.ZstdCompressor(level=1, write_content_size=False)
    chunker = packer.compressobj()
    bomb = b"".join(chunker.compress(b"\0" * (1 << 20)) for _ in range(65)) + chunker.flush()
    assert zstandard.get_frame_parameters(bomb).content_size == zstandard.CONTENTSIZE_UNKNOWN
    assert len(bomb) < 100_000
    with pytest.raises(CodecError, match=r"larger than|does not decompress"):
        codec.decompress(bomb, SHIPPED)


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=4096), kind=st.sampled_from(["case", "decision"]),
       packing=st.sampled_from(["zlib", "zstd"]))
def test_compress_then_decompress_is_the_identity(data: bytes, kind: Any, packing: Any) -> None:
    assert codec.decompress(codec.compress(kind, data, packing), SHIPPED) == data


# ------------------------------------------------ a format-3 trail, kept


def test_a_format_3_trail_reads_and_verifies_as_it_is(v3: Path) -> None:
    with AuditTrail(v3, readonly=True) as trail:
        assert trail.version == 3
        report = trail.verify()
        assert (report.ok, report.entries_checked, report.last_hash) == (True, *V3_HEAD)
        kinds = [e.kind for e in trail.entries()]
        assert kinds == ["decision"] * 4 + ["override", "accepted"]
    assert not any(codec.is_zstd(b) for b in _blobs(v3))


def test_appending_to_a_format_3_trail_keeps_writing_zlib(v3: Path) -> None:
    with AuditTrail(v3) as trail:
        trail.record(*pair(7), requester=ASKED)
        # prepared in a worker as format 4 would: recompressed on the way in
        trail.record_prepared([prepare_entry(*pair(8))])
        trail.override("dec-RUN-0007-7", "dr o", "why")
        assert trail.version == 3 and trail.verify().ok
        assert [e.case is not None for e in trail.entries()][-3:] == [True, True, False]
    assert not any(codec.is_zstd(b) for b in _blobs(v3))
    accept_decision(v3, "dec-RUN-0008-8", PROGRAM, "dr c")
    override_decision(v3, "dec-RUN-0007-7", "dr o", "disagree", requester=ASKED)
    assert not any(codec.is_zstd(b) for b in _blobs(v3))


def test_a_new_trail_is_format_4_with_zstd_documents(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    with AuditTrail(path) as trail:
        trail.record(*pair(1))
        trail.record_prepared([prepare_entry(*pair(2))])
        trail.override("dec-RUN-0001-1", "dr o", "why")
        assert trail.version == 4 and trail.verify().ok
        assert trail.entries()[1].decision == pair(2)[0]
    blobs = _blobs(path)
    assert len(blobs) == 5 and all(codec.is_zstd(b) for b in blobs)


# ------------------------------------------------- migrated to format 4


def test_migrating_format_3_keeps_every_hash_and_a_signed_checkpoint(
    v3: Path, tmp_path: Path
) -> None:
    key, _, _ = generate_key(tmp_path / "clinic.key")
    log = tmp_path / "checkpoints.jsonl"
    write_checkpoint(v3, key, log=log)
    with AuditTrail(v3, readonly=True) as trail:
        old = [(e.seq, e.entry_id, e.entry_hash, e.decision, e.case, e.requester)
               for e in trail.entries()]
    size_before = len(v3.read_bytes())

    report = migrate(v3)
    assert (report.from_version, report.to_version, report.entries) == (3, 4, 6)
    assert report.last_hash == V3_HEAD[1]
    assert all(codec.is_zstd(b) for b in _blobs(v3))
    with AuditTrail(v3) as trail:
        assert trail.version == 4
        assert trail.verify().ok and trail.head() == V3_HEAD
        assert [(e.seq, e.entry_id, e.entry_hash, e.decision, e.case, e.requester)
                for e in trail.entries()] == old
        assert check_checkpoints(trail, read_checkpoints(log)).ok
        # it records again, in zstd, chained on the old head
        entry = trail.record(*pair(9))
        assert entry.seq == 7 and entry.prev_hash == V3_HEAD[1]
        assert trail.verify().ok
    assert all(codec.is_zstd(b) for b in _blobs(v3))
    # the cases table is append-only again, and no staging table is left
    conn = sqlite3.connect(v3)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert not tables & {"entries_v4", "cases_v4"}
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM cases")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("UPDATE entries SET clinician = 'x'")
    finally:
        conn.close()
    assert size_before > 0
    again = migrate(v3)
    assert again.from_version == again.to_version == 4


def test_the_commands_verify_a_checkpoint_across_the_migration(v3: Path, tmp_path: Path) -> None:
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(cli, [*args, "--audit", str(v3)])

    key = str(tmp_path / "k.key")
    assert runner.invoke(cli, ["audit", "keygen", key]).exit_code == 0
    log = str(tmp_path / "cp.jsonl")
    assert run("audit", "checkpoint", "--key", key, "--log", log).exit_code == 0
    migrated = run("audit", "migrate")
    assert migrated.exit_code == 0, migrated.output
    assert "from format 3 to 4: 6 entries" in migrated.stdout
    ok = run("audit", "verify", "--checkpoint", log, "--public-key", key + ".pub")
    assert ok.exit_code == 0 and "1 checkpoint hold" in ok.output, ok.output
    assert V3_HEAD[1] in ok.output


def test_a_tampered_format_3_trail_is_not_migrated(v3: Path) -> None:
    with raw(v3) as conn:
        conn.execute("UPDATE entries SET clinician = 'someone else' WHERE seq = 2")

    def dump() -> list[str]:
        conn = sqlite3.connect(v3)
        try:
            return list(conn.iterdump())
        finally:
            conn.close()

    before = dump()
    with pytest.raises(AuditError, match="does not verify"):
        migrate(v3)
    assert dump() == before


def test_a_format_3_document_that_does_not_decompress_is_not_migrated(v3: Path) -> None:
    with raw(v3) as conn:
        conn.execute("UPDATE entries SET decision_body = X'78bb00' WHERE seq = 3")
    with pytest.raises(AuditError, match="does not verify"):
        migrate(v3)
    with AuditTrail(v3, readonly=True) as trail:
        assert trail.version == 3


def test_a_migration_interrupted_midway_leaves_format_3_as_it_was(
    v3: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0
    real = codec.compress

    def failing(kind: Any, data: bytes, packing: Any = "zstd") -> bytes:
        nonlocal calls
        calls += 1
        if calls == 5:
            raise KeyboardInterrupt  # as a ^C would, midway through the copy
        return real(kind, data, packing)

    monkeypatch.setattr(codec, "compress", failing)
    with pytest.raises(KeyboardInterrupt):
        migrate(v3)
    monkeypatch.setattr(codec, "compress", real)
    with AuditTrail(v3, readonly=True) as trail:
        assert trail.version == 3 and trail.verify().ok and trail.head() == V3_HEAD
    assert not any(codec.is_zstd(b) for b in _blobs(v3))
    report = migrate(v3)  # run again: it starts over and completes
    assert (report.from_version, report.to_version) == (3, 4)
    with AuditTrail(v3, readonly=True) as trail:
        assert trail.verify().ok and trail.head() == V3_HEAD


def test_a_handle_opened_before_the_migration_appends_zstd_after_it(v3: Path) -> None:
    # A long-running writer (the server, the app) opened the trail at
    # format 3; `audit migrate` then ran in another process. Its next
    # append must follow the format the file is in now, read under the
    # write lock, or the format-4 file gets zlib documents (mixed codecs).
    with AuditTrail(v3) as trail:
        assert trail.version == 3
        migrate(v3, vacuum=False)
        trail.record(*pair(9))
        trail.override("dec-RUN-0009-9", "dr o", "why")
        assert trail.version == 4 and trail.verify().ok
    assert all(codec.is_zstd(b) for b in _blobs(v3))
