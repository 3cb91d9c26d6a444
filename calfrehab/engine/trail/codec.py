"""How the audit trail (format 2) compresses the documents it stores.

Each stored document is a standard zlib stream (RFC 1950) of its canonical
JSON bytes, compressed with a *preset dictionary*: a few typical documents
(see ``scripts/build_trail_dictionaries.py``), so the keys, rule names,
reasons and citations every document repeats are back-references rather
than text. A zlib stream names its dictionary by the dictionary's Adler-32
(the DICTID in its header), and the trail stores every dictionary it has
used in its ``dictionaries`` table under that id, so a trail is readable
without this package's copy of them, and new dictionaries never make old
entries unreadable.

The hashes are always over the uncompressed canonical bytes: compressed
output may differ between zlib versions, the canonical bytes never do.
"""

from __future__ import annotations

import functools
import json
import zlib
from collections.abc import Mapping
from importlib import resources
from types import MappingProxyType
from typing import Final, Literal

from calfrehab.engine.canonical import canonical_bytes
from calfrehab.engine.errors import CodecError as CodecError

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "CodecError",
    "DocumentKind",
    "compress",
    "decompress",
    "dictionary_id",
    "shipped_dictionaries",
]

DocumentKind = Literal["case", "decision"]

# Level 3: measured on the benchmark cases (300, 2-core machine), a decision
# and its case take 1.1 KB at 0.19 ms of a worker's CPU; level 1 gives
# 1.5 KB for about the same time, level 6 0.93 KB for twice the time.
LEVEL: Final = 3
# zlib's default memory level. Level 9 doubles the hash tables that every
# document's copy of the primed compressor duplicates: measured on the same
# cases, it cost 10-20 us more per decision for the same size (1,108 against
# 1,103 bytes for a decision and its case).
MEM_LEVEL: Final = 8
# A stored document never needs more: a case file is capped at 10 MB on
# input. The cap stops a doctored stream (a "zip bomb") exhausting memory.
MAX_DOCUMENT_BYTES: Final = 64 * 1024 * 1024

_ZLIB_FDICT: Final = 0x20


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


@functools.cache
def _primed(kind: DocumentKind) -> zlib._Compress:
    # Loading a 32 KB dictionary is most of the cost of a small document;
    # copying a compressor that has already loaded it halves the time.
    return zlib.compressobj(
        LEVEL, zlib.DEFLATED, zlib.MAX_WBITS, MEM_LEVEL, zlib.Z_DEFAULT_STRATEGY,
        _dictionary(kind),
    )


def compress(kind: DocumentKind, data: bytes) -> bytes:
    """A zlib stream of ``data`` using the shipped dictionary for ``kind``."""
    packer = _primed(kind).copy()
    return packer.compress(data) + packer.flush()


def dictionary_id(blob: bytes) -> int | None:
    """The DICTID a zlib stream needs, or None if it needs no dictionary.
    Raises CodecError if ``blob`` does not start like a zlib stream."""
    if not isinstance(blob, bytes) or len(blob) < 2:
        raise CodecError("stored document is not a zlib stream")
    cmf, flg = blob[0], blob[1]
    if cmf & 0x0F != zlib.DEFLATED or (cmf << 8 | flg) % 31:
        raise CodecError("stored document is not a zlib stream")
    if not flg & _ZLIB_FDICT:
        return None
    if len(blob) < 6:
        raise CodecError("stored document is cut short")
    return int.from_bytes(blob[2:6], "big")


def decompress(blob: bytes, dictionaries: Mapping[int, bytes]) -> bytes:
    """The bytes a zlib stream holds, using ``dictionaries`` (by DICTID)."""
    dict_id = dictionary_id(blob)
    if dict_id is None:
        unpacker = zlib.decompressobj()
    else:
        zdict = dictionaries.get(dict_id)
        if zdict is None:
            raise CodecError(
                f"stored document needs compression dictionary {dict_id:08x}, "
                "which the trail does not hold"
            )
        unpacker = zlib.decompressobj(zdict=zdict)
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
