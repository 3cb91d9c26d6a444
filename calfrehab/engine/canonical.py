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
form. With its guards, orjson takes about two-thirds of the standard
encoder's time for a case and three-quarters for a decision document
(orjson's writing alone is a sixth; reading its output back for the
comparison below is most of the rest). orjson's output is refused (and
the standard encoder used) when:

* orjson refuses the value: an integer beyond 64 bits, a key that is not a
  string, a lone surrogate, nesting deeper than 254;
* it holds a number token in exponent form or starting ``0.0000``: orjson
  writes ``1e-9``, ``1e16`` and ``0.00001`` where Python writes ``1e-09``,
  ``1e+16`` and ``1e-05`` (every float Python writes in exponent form, and
  only those, comes out of orjson in one of these two shapes); a string
  that merely looks like that costs only the slower path;
* parsed back, it is not equal to the value: NaN and the infinities (which
  orjson writes as ``null``; the standard encoder then refuses them, as
  before), tuples, and types JSON does not have but orjson writes
  (dataclasses, datetimes, enums: refused, as before).

``tests/engine/core/test_canonical.py`` compares the two encoders byte for byte over
generated documents, floats at the edges included.
"""

from __future__ import annotations

import hashlib
import json
import re
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
    "canonical_bytes_parsed",
    "canonical_json",
    "case_sha256",
    "sha256_hex",
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


# orjson's exponent form (a digit, ``e``, a sign or a digit), found by its
# literal ``e`` (fast), then checked to be inside a number token; and its
# fixed form of a float below 1e-4.
_EXPONENT: Final = re.compile(rb"e[-0-9](?<=[0-9]e[-0-9])")
_SMALL: Final = b"0.0000"
_NUMBER_CHARS: Final = frozenset(b"0123456789.-")
_BEFORE_NUMBER: Final = frozenset(b":,[")


def _respelled(out: bytes) -> bool:
    """Whether orjson's ``out`` may hold a float Python spells otherwise.
    A string that looks like one only sends the value the slower way."""
    if _SMALL in out:
        return True
    for match in _EXPONENT.finditer(out):
        i = match.start() - 1
        while i >= 0 and out[i] in _NUMBER_CHARS:
            i -= 1
        if i < 0 or out[i] in _BEFORE_NUMBER:
            return True  # a number token, not the inside of a string
    return False


def _orjson_bytes(obj: object) -> bytes | None:
    """orjson's canonical bytes of ``obj`` if they are exactly the standard
    encoder's, else None (see the module docstring)."""
    if orjson is None:
        return None
    try:
        out = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        return None
    if _respelled(out) or orjson.loads(out) != obj:
        return None
    return out


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


def sha256_hex(data: bytes) -> str:
    """sha256 of ``data`` as 64 lowercase hex digits."""
    return hashlib.sha256(data).hexdigest()


def case_sha256(document: Mapping[str, Any]) -> str:
    """sha256 (hex) of a case document's canonical JSON: the ``case_sha256``
    a decision names and that ``batch --resume`` looks up."""
    return sha256_hex(canonical_bytes(document))
