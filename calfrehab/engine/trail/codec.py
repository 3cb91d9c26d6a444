"""How the audit trail compresses the documents it stores.

Format 4 (written since this issue's release) stores each document as a
Zstandard frame (RFC 8878) of its canonical JSON bytes, compressed (the
"fast" strategy, small tables: see below) with a *preset dictionary*: a few typical documents (see
``scripts/build_trail_dictionaries.py``), so the keys, rule names,
reasons and citations every document repeats are back-references rather
than text. The dictionary is loaded as raw content, which gives a frame no
dictionary id of its own, so the frame is preceded by a 12-byte zstd
*skippable frame* (magic 0x184D2A50, RFC 8878 §3.1.2) holding the
dictionary's id: the Adler-32 of its bytes, little-endian, the same id a
zlib stream names. Standard tools skip that frame; a reader finds the
dictionary without guessing. Measured inside a batch worker (2-core
machine), zstd compresses a decision and its case in about 45 us against
zlib's 115-140 us with the same dictionaries, 15% larger (1,424 against
1,240 bytes for both, the skippable frames included).

Formats 2 and 3 stored standard zlib streams (RFC 1950) with the same
dictionaries, named by the DICTID in their header. They stay readable
(:func:`decompress` tells the two apart by their first bytes), and a
format-3 trail that is not yet migrated keeps being written with zlib
(:func:`codec_for`), so one trail never mixes the two until ``audit
migrate`` rewrites it.

The trail stores every dictionary it has used in its ``dictionaries``
table under that id, so a trail is readable without this package's copy
of them, and new dictionaries never make old entries unreadable.

The hashes are always over the uncompressed canonical bytes: compressed
output may differ between library versions, the canonical bytes never do.
"""

from __future__ import annotations

import functools
import json
import zlib
from collections.abc import Mapping
from importlib import resources
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, Literal

from calfrehab.engine.canonical import canonical_bytes
from calfrehab.engine.errors import CodecError as CodecError

if TYPE_CHECKING:  # imported when first used: `next` without a trail never needs it
    import zstandard

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "Codec",
    "CodecError",
    "DocumentKind",
    "codec_for",
    "compress",
    "decompress",
    "dictionary_id",
    "shipped_dictionaries",
]

DocumentKind = Literal["case", "decision"]
Codec = Literal["zlib", "zstd"]

# zlib level 3 (formats 2 and 3): measured on the benchmark cases (300,
# 2-core machine), a decision and its case take 1.1 KB at 0.19 ms of a
# worker's CPU; level 1 gives 1.5 KB for about the same time, level 6
# 0.93 KB for twice the time.
LEVEL: Final = 3
# zlib's default memory level. Level 9 doubles the hash tables that every
# document's copy of the primed compressor duplicates: measured on the same
# cases, it cost 10-20 us more per decision for the same size (1,108 against
# 1,103 bytes for a decision and its case).
MEM_LEVEL: Final = 8
# zstd (format 4): the "fast" strategy with small tables, not a level's.
# A document larger than 8 KB (every decision) makes zstd *copy* the primed
# dictionary's tables into its context before each compression; level 3's
# are 768 KB (hash log 17, chain log 16), which costs little timed alone
# (28 us for a decision and its case) but, in a batch worker, evicts the
# engine's data from the caches: measured inside a worker (decide_item,
# 300 cases, 4 interleaved rounds, load 2.4), compressing took 66 us a case
# at level 3 and 43 us with these 16 KB tables, and the whole case 36 us
# less, for documents 6% larger (1,456 against 1,369 bytes for both).
# Pinned rather than a level, so the output does not move with zstd's
# level tables. The window (64 KB) holds the dictionary and a document.
ZSTD_WINDOW_LOG: Final = 16
ZSTD_HASH_LOG: Final = 12
ZSTD_MIN_MATCH: Final = 6
# A stored document never needs more: a case file is capped at 10 MB on
# input. The cap stops a doctored stream (a "zip bomb") exhausting memory.
MAX_DOCUMENT_BYTES: Final = 64 * 1024 * 1024

_ZLIB_FDICT: Final = 0x20
_ZSTD_MAGIC: Final = b"\x28\xb5\x2f\xfd"  # 0xFD2FB528, little-endian
# The first of the sixteen skippable-frame magics (0x184D2A50..5F): a
# 4-byte frame size (always 4 here), then the dictionary's Adler-32.
_SKIPPABLE_MAGIC: Final = b"\x50\x2a\x4d\x18"
_DICT_FRAME_SIZE: Final = 12


@functools.cache
def _dictionary(kind: DocumentKind) -> bytes:
    source = resources.files("calfrehab.engine.trail").joinpath(f"dictionaries/{kind}.jsonl")
    lines = source.read_bytes().splitlines()
    # Re-serialised canonically, so the bytes are the same wherever the
    # file was checked out (line endings, an editor's trailing spaces).
    return b"".join(canonical_bytes(json.loads(line)) for line in lines if line.strip())


@functools.cache
def shipped_dictionaries() -> Mapping[int, bytes]:
    """The dictionaries this version compresses with, by DICTID (Adler-32).
    Read-only: computed once per process."""
    return MappingProxyType(
        {zlib.adler32(d): d for d in (_dictionary("case"), _dictionary("decision"))}
    )


def codec_for(version: int) -> Codec:
    """How documents are written into a trail of format ``version``: zlib
    into format 3 (until it is migrated), zstd into format 4."""
    return "zstd" if version >= 4 else "zlib"


@functools.cache
def _primed(kind: DocumentKind) -> zlib._Compress:
    # Loading a 32 KB dictionary is most of the cost of a small document;
    # copying a compressor that has already loaded it halves the time.
    return zlib.compressobj(
        LEVEL, zlib.DEFLATED, zlib.MAX_WBITS, MEM_LEVEL, zlib.Z_DEFAULT_STRATEGY,
        _dictionary(kind),
    )


@functools.cache
def _zstd_compressor(kind: DocumentKind) -> tuple[zstandard.ZstdCompressor, bytes]:
    """The compressor for ``kind`` with its dictionary loaded (and its
    tables precomputed) once per process, and the skippable frame naming
    that dictionary."""
    import zstandard

    zdict = _dictionary(kind)
    loaded = zstandard.ZstdCompressionDict(zdict, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
    # No checksum: the trail checks every document against the sha256 of
    # its canonical bytes, which the entry hash covers. The content size
    # is written so that a reader can refuse an oversized frame unread.
    params = zstandard.ZstdCompressionParameters(
        strategy=zstandard.STRATEGY_FAST, window_log=ZSTD_WINDOW_LOG,
        hash_log=ZSTD_HASH_LOG, chain_log=ZSTD_HASH_LOG, search_log=1,
        min_match=ZSTD_MIN_MATCH, target_length=0,
        write_content_size=1, write_checksum=0, write_dict_id=0,
    )
    loaded.precompute_compress(compression_params=params)
    packer = zstandard.ZstdCompressor(dict_data=loaded, compression_params=params)
    header = (
        _SKIPPABLE_MAGIC + (4).to_bytes(4, "little")
        + zlib.adler32(zdict).to_bytes(4, "little")
    )
    return packer, header


def compress(kind: DocumentKind, data: bytes, codec: Codec = "zstd") -> bytes:
    """``data`` compressed with the shipped dictionary for ``kind``: a
    skippable frame naming the dictionary and a zstd frame (format 4), or
    with ``codec="zlib"`` a zlib stream (formats 2 and 3)."""
    if codec == "zstd":
        packer, header = _zstd_compressor(kind)
        return header + packer.compress(data)
    zpacker = _primed(kind).copy()
    return zpacker.compress(data) + zpacker.flush()


def is_zstd(blob: bytes) -> bool:
    """Whether ``blob`` starts as a zstd document (format 4) does."""
    return blob[:4] in (_SKIPPABLE_MAGIC, _ZSTD_MAGIC)


def dictionary_id(blob: bytes) -> int | None:
    """The dictionary id a stored document needs (a zlib stream's DICTID,
    or the id in a zstd document's skippable frame), or None if it needs
    no dictionary. Raises CodecError if ``blob`` starts as neither."""
    if not isinstance(blob, bytes) or len(blob) < 2:
        raise CodecError("stored document is neither a zlib stream nor a zstd frame")
    if is_zstd(blob):
        # Read in place: the parent asks this of every prepared document.
        if blob[:4] != _SKIPPABLE_MAGIC:
            return None
        if len(blob) < _DICT_FRAME_SIZE:
            raise CodecError("stored document is cut short")
        return int.from_bytes(blob[8:12], "little")
    cmf, flg = blob[0], blob[1]
    if cmf & 0x0F != zlib.DEFLATED or (cmf << 8 | flg) % 31:
        raise CodecError("stored document is neither a zlib stream nor a zstd frame")
    if not flg & _ZLIB_FDICT:
        return None
    if len(blob) < 6:
        raise CodecError("stored document is cut short")
    return int.from_bytes(blob[2:6], "big")


def _split_zstd(blob: bytes) -> tuple[int | None, bytes]:
    """(the dictionary id, the data frame) of a zstd document."""
    if blob[:4] != _SKIPPABLE_MAGIC:
        return None, blob
    if len(blob) < _DICT_FRAME_SIZE:
        raise CodecError("stored document is cut short")
    if blob[4:8] != (4).to_bytes(4, "little"):
        raise CodecError("stored document's dictionary frame is not 4 bytes long")
    return int.from_bytes(blob[8:12], "little"), blob[_DICT_FRAME_SIZE:]


def _need(dict_id: int, dictionaries: Mapping[int, bytes]) -> bytes:
    zdict = dictionaries.get(dict_id)
    if zdict is None:
        raise CodecError(
            f"stored document needs compression dictionary {dict_id:08x}, "
            "which the trail does not hold"
        )
    return zdict


@functools.lru_cache(maxsize=8)
def _zstd_decompressor(zdict: bytes | None) -> zstandard.ZstdDecompressor:
    # A trail holds a handful of dictionaries; loading one costs more than
    # decompressing a document, so each is loaded once per process.
    import zstandard

    if zdict is None:
        return zstandard.ZstdDecompressor()
    return zstandard.ZstdDecompressor(
        dict_data=zstandard.ZstdCompressionDict(zdict, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
    )


def _decompress_zstd(blob: bytes, dictionaries: Mapping[int, bytes]) -> bytes:
    import zstandard

    dict_id, frame = _split_zstd(blob)
    zdict = None if dict_id is None else _need(dict_id, dictionaries)
    if frame[:4] != _ZSTD_MAGIC:
        raise CodecError("stored document's dictionary frame is not followed by a zstd frame")
    try:
        size = zstandard.get_frame_parameters(frame).content_size
    except zstandard.ZstdError as exc:
        raise CodecError("stored document is cut short") from exc
    too_large = CodecError(f"stored document is larger than {MAX_DOCUMENT_BYTES} bytes")
    unpacker = _zstd_decompressor(zdict)
    if size == zstandard.CONTENTSIZE_UNKNOWN:
        # Not calfrehab's (it states every size), but a valid frame: read
        # at most one byte past the cap, so a bomb is named as one rather
        # than as a frame cut short.
        try:
            with unpacker.stream_reader(frame) as reader:
                if len(reader.read(MAX_DOCUMENT_BYTES + 1)) > MAX_DOCUMENT_BYTES:
                    raise too_large
        except zstandard.ZstdError:
            pass  # reported below, as the bounded decompression words it
    elif size > MAX_DOCUMENT_BYTES:
        raise too_large
    try:
        # Bounded either way: by the stated size (zstd refuses a frame that
        # decodes to more), or, when none is stated, by the cap.
        return unpacker.decompress(
            frame, max_output_size=MAX_DOCUMENT_BYTES, allow_extra_data=False
        )
    except zstandard.ZstdError as exc:
        text = str(exc)
        if "unused data" in text:
            raise CodecError("stored document has bytes after its end") from exc
        if "full frame" in text:
            raise CodecError("stored document is cut short") from exc
        raise CodecError(f"stored document does not decompress: {text}") from exc


def decompress(blob: bytes, dictionaries: Mapping[int, bytes]) -> bytes:
    """The bytes a stored document holds (a zstd document or a zlib
    stream), using ``dictionaries`` (by id)."""
    dict_id = dictionary_id(blob)
    if is_zstd(blob):
        return _decompress_zstd(blob, dictionaries)
    if dict_id is None:
        unpacker = zlib.decompressobj()
    else:
        unpacker = zlib.decompressobj(zdict=_need(dict_id, dictionaries))
    try:
        data = unpacker.decompress(blob, MAX_DOCUMENT_BYTES)
        if unpacker.unconsumed_tail:
            raise CodecError(f"stored document is larger than {MAX_DOCUMENT_BYTES} bytes")
        data += unpacker.flush()
    except zlib.error as exc:
        raise CodecError(f"stored document does not decompress: {exc}") from exc
    if not unpacker.eof or unpacker.unused_data:
        raise CodecError("stored document is cut short or has bytes after its end")
    return data
