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
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Final

from calfrehab.engine.errors import CalfrehabError

__all__ = [
    "SHA256_HEX_LEN",
    "CanonicalJSONError",
    "canonical_bytes",
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


class CanonicalJSONError(CalfrehabError, ValueError):
    """A value has no canonical JSON form (NaN, Infinity, a lone surrogate,
    keys that cannot be sorted together, a type JSON does not have).

    Documents read from JSON only ever have string keys; a program that
    builds one with int keys gets them written as strings, as ``json`` does.
    """


def canonical_json(obj: object) -> str:
    """The canonical JSON text of ``obj`` (see the module docstring)."""
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
    text = canonical_json(obj)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CanonicalJSONError(
            f"no canonical JSON for this value: text is not valid Unicode ({exc.reason})"
        ) from exc


def sha256_hex(data: bytes) -> str:
    """sha256 of ``data`` as 64 lowercase hex digits."""
    return hashlib.sha256(data).hexdigest()


def case_sha256(document: Mapping[str, Any]) -> str:
    """sha256 (hex) of a case document's canonical JSON: the ``case_sha256``
    a decision names and that ``batch --resume`` looks up."""
    return sha256_hex(canonical_bytes(document))
