"""The one canonical JSON serialisation, and the sha256 helpers over it.

Every hash the program takes over a document (a case's ``case_sha256``,
an audit entry's ``entry_hash``) and every document text the audit trail
stores goes through :func:`canonical_bytes`, so two programs that build
the same document in a different order or with different spacing get the
same bytes, and so the same hash.

The form follows RFC 8785 (JSON Canonicalization Scheme) as far as the
data needs:

* object keys sorted, no insignificant whitespace, UTF-8 output with no
  ``\\u`` escapes beyond the ones JSON requires (control characters,
  ``"`` and ``\\``);
* NaN and +/-Infinity are refused: they are not JSON, and a hash over
  text that no other program can parse proves nothing;
* text that is not valid Unicode (a lone surrogate) is refused, since it
  has no UTF-8 encoding;
* integers are written exactly, floats in Python's shortest round-trip
  form.

Where it differs from RFC 8785, deliberately: keys sort by code point
rather than by UTF-16 code unit (the same order for every key below
U+E000, which covers every key the case and decision formats define), and
a float keeps Python's spelling (``10.0``, ``1e+16``) rather than
ECMAScript's (``10``, ``10000000000000000``). Changing either would change
the ``case_sha256`` of case files already recorded in clinics' trails;
keeping Python's spelling keeps every recorded hash valid.

The bytes come from orjson when, and only when, they are the standard
encoder's bytes; otherwise from the standard encoder, which defines the
form. With its guards, orjson takes about half the standard encoder's
time for a decision document. orjson's output is refused (and the
standard encoder used) when:

* the value holds anything but dicts, lists, strings, integers, booleans,
  None and floats of exact type (checked by one pass over the containers,
  :func:`_plain`), or a float that is NaN or infinite (orjson writes those
  as ``null``; the standard encoder then refuses them, as before), or
  non-zero and outside 1e-4 to 1e16 (where Python writes an exponent);
  tuples, subclasses (enums) and types JSON does not have but orjson
  writes (dataclasses, datetimes) are left to the standard encoder, which
  refuses or writes them as before;
* orjson refuses the value: an integer beyond 64 bits, a key that is not a
  string, a lone surrogate, nesting deeper than 254.

Between 1e-4 and 1e16 both encoders write a float's shortest round-trip
digits in fixed notation, so the bytes agree; outside it, where Python
writes an exponent (``1e-05``, ``1e+16``), orjson writes ``1e-5``,
``0.00001`` or ``1e16`` depending on its version. For a value known to be
parsed JSON, :func:`canonical_bytes_parsed` skips the pass and checks
orjson's output for those spellings instead (:func:`_respelled`).

``tests/engine/core/test_canonical.py`` compares the two encoders byte for byte over
generated documents, floats at the edges included.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Final

from calfrehab.engine.errors import CanonicalJSONError as CanonicalJSONError

try:
    import orjson
except ImportError:  # pragma: no cover - a dependency; an environment not
    # reinstalled since it was added still works, on the standard encoder.
    orjson = None  # type: ignore[assignment]

__all__ = [
    "SHA256_HEX_LEN",
    "CanonicalJSONError",
    "canonical_bytes",
    "canonical_bytes_checked",
    "canonical_bytes_parsed",
    "canonical_from_orjson",
    "canonical_json",
    "case_sha256",
    "compact_json",
    "compact_json_checked",
    "sha256_hex",
    "spelled_alike",
]

SHA256_HEX_LEN: Final = 64

# One encoder, built once: json.dumps builds a new one on every call with
# non-default options, which shows on a batch's hot path.
# check_circular off: the circular-reference check keeps a table entry for
# every container while it is encoded (about 10% of the time for a decision
# document), and the output is the same without it. A self-containing value
# still fails cleanly, as a RecursionError (below).
_ENCODER: Final = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
    check_circular=False,
)


# orjson's exponent form (a digit, ``e``, a sign or a digit) and its fixed
# form of a float below 1e-4 (``0.0000``), found at C speed: the output is
# mapped to digits ("0"), ``.``, ``-``, ``e``, what may come before a number
# (":") and anything else ("x"), and only where a digit meets an ``e`` is a
# token walked back, in Python (hex digests hold a few such places).
_SMALL: Final = b"0.0000"
_NUMBERISH: Final = bytes(
    0x30 if 0x30 <= c <= 0x39 else c if c in b".-e" else 0x3A if c in b":,[" else 0x78
    for c in range(256)
)
_DIGIT_E: Final = b"0e"
_DIGIT, _COLON = 0x30, 0x3A
_IN_NUMBER: Final = frozenset(b"0.-")
_AFTER_E: Final = frozenset(b"0-")


def _respelled(out: bytes) -> bool:
    """Whether orjson's ``out`` may hold a float Python spells otherwise.
    A string that looks like one only sends the value the slower way."""
    if _SMALL in out:
        return True
    mapped = out.translate(_NUMBERISH)
    i = mapped.find(_DIGIT_E)
    while i >= 0:
        if i + 2 < len(mapped) and mapped[i + 2] in _AFTER_E:
            j = i
            while j >= 0 and mapped[j] in _IN_NUMBER:
                j -= 1
            if j < 0 or mapped[j] == _COLON:
                return True  # a number token, not the inside of a string
        i = mapped.find(_DIGIT_E, i + 1)
    return False


_SCALARS: Final = frozenset((str, int, bool, type(None)))


def spelled_alike(value: float) -> bool:
    """Whether orjson writes the float ``value`` as the standard encoder
    does: finite (orjson writes NaN and the infinities as ``null``), and
    zero or from 1e-4 to below 1e16 in size (outside it Python writes an
    exponent, and orjson, by version, does or does not)."""
    size = abs(value)
    return 1e-4 <= size < 1e16 or size == 0.0  # NaN fails both


def _plain(obj: object) -> bool:
    """Whether ``obj`` holds only dicts, lists, strings, integers, booleans,
    None and floats that orjson writes as the standard encoder does: finite
    (orjson writes NaN and the infinities as ``null``), zero or from 1e-4 to
    below 1e16 (outside that Python writes an exponent, and orjson, by
    version, does or does not). Exact types: a subclass (an enum, say) and a
    tuple are left to the standard encoder, which defines how they read.
    One pass in Python over the containers; a string costs one type check."""
    for value in obj.values() if type(obj) is dict else obj:  # type: ignore[attr-defined]
        kind = type(value)
        if kind is str:
            continue
        if kind is dict or kind is list:
            if not _plain(value):
                return False
        elif kind is float:  # spelled_alike, inline (a call per float shows)
            size = abs(value)
            if not 1e-4 <= size < 1e16 and size != 0.0:
                return False  # NaN fails both comparisons
        elif kind not in _SCALARS:
            return False
    return True


def _orjson_bytes(obj: object) -> bytes | None:
    """orjson's canonical bytes of ``obj`` if they are exactly the standard
    encoder's, else None (see the module docstring)."""
    if orjson is None:
        return None
    try:
        if not _plain(obj if type(obj) in (dict, list) else [obj]):
            return None
    except RecursionError:
        return None  # the standard encoder reports it
    try:
        return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        return None


def compact_json(obj: object) -> str:
    """``json.dumps(obj, ensure_ascii=False, separators=(",", ":"))``: keys
    in the dicts' own order, not canonical. From orjson when the value
    passes the same check as :func:`canonical_bytes` (so the text is the
    standard encoder's), else from the standard library, which also writes
    NaN as ``NaN`` here, as it always did. What a batch's JSON Lines row is."""
    if orjson is not None:
        try:
            if _plain(obj if type(obj) in (dict, list) else [obj]):
                return orjson.dumps(obj).decode("utf-8")
        except (TypeError, orjson.JSONEncodeError, RecursionError):
            pass
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def compact_json_checked(obj: object) -> str:
    """:func:`compact_json` of a value its maker vouches for as
    :func:`canonical_bytes_checked` requires (every float spelled alike,
    only JSON's containers and scalars): orjson's text with no pass over
    the values; what orjson refuses goes to compact_json, as ever."""
    if orjson is not None:
        try:
            return orjson.dumps(obj).decode("utf-8")
        except (TypeError, orjson.JSONEncodeError):
            pass
    return compact_json(obj)


def canonical_json(obj: object) -> str:
    """The canonical JSON text of ``obj`` (see the module docstring)."""
    fast = _orjson_bytes(obj)
    if fast is not None:
        return fast.decode("utf-8")
    return _standard_json(obj)


def _standard_json(obj: object) -> str:
    """The standard encoder's text: the definition of the form."""
    try:
        text = _ENCODER.encode(obj)
    except (TypeError, ValueError) as exc:
        raise CanonicalJSONError(f"no canonical JSON for this value: {exc}") from exc
    except RecursionError as exc:
        raise CanonicalJSONError("no canonical JSON for this value: nested too deeply") from exc
    return text


def canonical_bytes(obj: object) -> bytes:
    """The canonical JSON of ``obj`` as UTF-8 bytes: what is hashed, stored
    and shipped between processes."""
    fast = _orjson_bytes(obj)
    if fast is not None:
        return fast
    text = _standard_json(obj)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CanonicalJSONError(
            f"no canonical JSON for this value: text is not valid Unicode ({exc.reason})"
        ) from exc


def canonical_bytes_parsed(obj: object) -> bytes:
    """:func:`canonical_bytes` of a value that holds only what a JSON parser
    returns, with every number finite: dicts with string keys, lists,
    strings, integers, finite floats, booleans and None. A case document
    from :func:`calfrehab.engine.casefile.validation.parse_json` that has
    validated as a Case is one (every key is a field, every float a finite
    number); the caller vouches for it.

    For such a value orjson's bytes differ from the standard encoder's only
    in a float's spelling, which :func:`_respelled` catches, so the
    round trip that guards :func:`canonical_bytes` against NaN and non-JSON
    types (about half its time) is left out. The same bytes either way."""
    if orjson is not None:
        try:
            out = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
        except (TypeError, orjson.JSONEncodeError):
            pass  # a lone surrogate, an integer beyond 64 bits: as before
        else:
            if not _respelled(out):
                return out
    return canonical_bytes(obj)


def canonical_bytes_checked(obj: object) -> bytes:
    """:func:`canonical_bytes` of a value its maker vouches for, part by
    part, where it made it: it holds only dicts with string keys, lists,
    strings, integers, booleans, None and floats of exact type for which
    :func:`spelled_alike` holds. A decision document's JSON-mode data is one
    (:func:`calfrehab.engine.explanation.document.document_data` checks each
    float it puts in, and says when one is not spelled alike).

    For such a value orjson's bytes are the standard encoder's, so neither
    the pass over every value (:func:`_plain`) nor the look at the output
    (:func:`_respelled`) is needed: about half of canonical_bytes' time for
    a decision. What orjson still refuses (an integer beyond 64 bits, a lone
    surrogate) goes to canonical_bytes, which writes or refuses it as ever."""
    if orjson is not None:
        try:
            return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
        except (TypeError, orjson.JSONEncodeError):
            pass
    return canonical_bytes(obj)


def canonical_from_orjson(written: bytes) -> bytes | None:
    """``written``, orjson's sorted output (``OPT_SORT_KEYS``) of a value
    that holds only what a JSON parser returns, with every number finite
    (as :func:`canonical_bytes_parsed` promises), if it is that value's
    canonical bytes; None if a float may be spelled otherwise. For a caller
    that wrote the bytes anyway (the case parser counts in them)."""
    return None if _respelled(written) else written


def sha256_hex(data: bytes) -> str:
    """sha256 of ``data`` as 64 lowercase hex digits."""
    return hashlib.sha256(data).hexdigest()


def case_sha256(document: Mapping[str, Any]) -> str:
    """sha256 (hex) of a case document's canonical JSON: the ``case_sha256``
    a decision names and that ``batch --resume`` looks up."""
    return sha256_hex(canonical_bytes(document))
