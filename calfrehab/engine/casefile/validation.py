"""Build a :class:`Case` from untrusted JSON, reporting every error at once.

Three passes, each tolerant of what the others reject, so a file's errors
are all named together: JSON syntax (line and column), the pydantic field
rules, and the rules that span fields.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any, Final, get_args

from pydantic import BaseModel, ValidationError

from calfrehab.engine.canonical import canonical_from_orjson
from calfrehab.engine.casefile.model import (
    EARLIEST_DATE,
    LATEST_DATE,
    SUPPORTED_SCHEMA_VERSIONS,
    Case,
    RedFlag,
)
from calfrehab.engine.errors import CaseValidationError, FieldError, InputError
from calfrehab.engine.limits import max_input_bytes
from calfrehab.engine.safeio import read_input_bytes
from calfrehab.engine.textsafe import for_terminal
from calfrehab.engine.vocabulary import EXERCISES, TRACKS, ExerciseId, exercises_on

try:
    import orjson
except ImportError:  # pragma: no cover - a dependency; without it, the standard parser
    orjson = None  # type: ignore[assignment]

KNOWN_RED_FLAGS: tuple[str, ...] = get_args(RedFlag)
KNOWN_EXERCISES: tuple[str, ...] = get_args(ExerciseId)


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # A key given twice would silently keep the last value; in a clinical
    # record that can hide a pain score, so it is an error.
    out = dict(pairs)
    if len(out) != len(pairs):  # rare: find which key, at Python speed
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return out


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


class HugeInt:
    """A JSON integer too long to be any value of a case file (Python will
    not even convert one over 4,300 digits). Parsing keeps its place in the
    document so the field that holds it is named, with its length."""

    __slots__ = ("digits",)

    def __init__(self, text: str) -> None:
        self.digits = len(text.lstrip("-"))

    def __repr__(self) -> str:
        return f"<a {self.digits}-digit whole number>"


def _parse_huge_int(text: str) -> int | HugeInt:
    # Only used on a second parse after the default one refused an integer:
    # the common case pays nothing for it.
    return HugeInt(text) if len(text) > _MAX_INT_DIGITS else int(text)


# Far more than any field's range needs, far less than Python's limit.
_MAX_INT_DIGITS = 30


def _loads(text: str, *, huge: bool = False) -> Any:
    if huge:
        return json.loads(text, object_pairs_hook=_no_duplicates,
                          parse_constant=_reject_constant, parse_int=_parse_huge_int)
    return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)


# Digits (as "0") and everything else (as "x"), to find a run of 19 digits
# at C speed: an integer that may not fit 64 bits, which orjson reads as a
# float (json.loads as the exact int).
_DIGITS_ONLY: Final = bytes(0x30 if 0x30 <= c <= 0x39 else 0x78 for c in range(256))
_LONG_INTEGER: Final = b"0" * 19
# How a JSON text may spell a colon as an escape inside a string (\u003a).
_ESCAPED_COLON: Final = "\\u003"


def _fast_parse(text: str) -> tuple[Any, bytes | None] | None:
    """orjson's parse of ``text`` when it is exactly what the standard parse
    returns, with the parsed value's canonical bytes when orjson's sorted
    output is them; else None (the standard parse then decides, and reports).

    orjson parses in a third of the time, but keeps the last of a key given
    twice, reads an integer beyond 64 bits as a float, and refuses with its
    own words what the standard parser reports; so:

    * a text orjson refuses goes the standard way (which reports it, or
      accepts it: a lone surrogate, 1e400);
    * so does a text with a run of 19 digits;
    * a key given twice is found by counting colons. Outside strings a JSON
      text has exactly one colon per object member; inside, each string has
      the same colons in the text and in orjson's output of the parsed value
      (orjson never escapes a colon, and a text that may spell one as an
      escape goes the standard way). So the counts are equal when no member
      was lost, and a duplicated key, whose member (and the colons in its
      value) the parse drops, always makes them differ.

    The output written for counting is sorted, so it is also the value's
    canonical bytes (the case's hash) unless a float is spelled otherwise.
    """
    if orjson is None or _ESCAPED_COLON in text:
        return None
    raw = text.encode("utf-8", "surrogatepass")
    if _LONG_INTEGER in raw.translate(_DIGITS_ONLY):
        return None
    try:
        doc = orjson.loads(raw)
        written = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):
        return None
    if written.count(b":") != raw.count(b":"):
        return None  # a key given twice: the standard parse names it
    return doc, canonical_from_orjson(written)


def parse_json_canonical(text: str, source: str) -> tuple[Any, bytes | None]:
    """:func:`parse_json`, and the parsed value's canonical bytes
    (:func:`calfrehab.engine.canonical.canonical_bytes_parsed`) when they
    came with the parse for free, else None."""
    text = _without_signature(text, source)
    fast = _fast_parse(text)
    if fast is not None:
        return fast
    return _standard_parse(text, source), None


def parse_json(text: str, source: str) -> Any:
    """Parse JSON text; a syntax error names the line and column."""
    text = _without_signature(text, source)
    fast = _fast_parse(text)
    if fast is not None:
        return fast[0]
    return _standard_parse(text, source)


def _without_signature(text: str, source: str) -> str:
    text = text.removeprefix("\ufeff")
    if text.startswith("\ufeff"):
        # `next` and `batch` read the same bytes the same way: one mark is an
        # encoding signature, a second is content no JSON reader accepts.
        raise CaseValidationError(source, [FieldError(
            "", "starts with two byte-order marks (U+FEFF); expected at most one")])
    return text


def _standard_parse(text: str, source: str) -> Any:
    """The standard library's parse, which defines what a case file reads
    as and words every refusal (orjson's was refused or not tried)."""
    try:
        try:
            return _loads(text)
        except ValueError as exc:
            if isinstance(exc, json.JSONDecodeError) or "integer string conversion" not in str(exc):
                raise
            return _loads(text, huge=True)
    except json.JSONDecodeError as exc:
        raise CaseValidationError(
            source,
            [FieldError("", f"not valid JSON: {exc.msg}", line=exc.lineno, column=exc.colno)],
        ) from None
    except RecursionError:
        raise CaseValidationError(
            source, [FieldError("", "not valid JSON: nested too deeply")]
        ) from None
    except _DuplicateKey as exc:
        raise CaseValidationError(
            source, [FieldError("", f"key `{for_terminal(exc.args[0], limit=_KEY_SHOWN)}` "
                                    "appears twice in one object")]
        ) from None
    except ValueError as exc:
        raise CaseValidationError(source, [FieldError("", str(exc))]) from None


# How much of a key or a value from the case an error message shows (a 10 MB
# key must not become 20 MB of error output).
_KEY_SHOWN = 60
_VALUE_SHOWN = 60
_PATH_SHOWN = 120


def _show(value: Any) -> str:
    """A value from the case as an error shows it: JSON, at most about
    _VALUE_SHOWN characters, every control character escaped."""
    if isinstance(value, HugeInt):
        return repr(value)
    if isinstance(value, str) and len(value) > _VALUE_SHOWN:
        value = value[: _VALUE_SHOWN + 1]  # never serialise megabytes to show 60 characters
    elif isinstance(value, (dict, list)):
        # A container is shown by its beginning only.
        value = _preview(value)
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return for_terminal(text, limit=_VALUE_SHOWN)


def _preview(value: Any, depth: int = 0) -> Any:
    if isinstance(value, dict):
        items = list(value.items())[:4]
        return {str(k)[: _KEY_SHOWN + 1]: _preview(v, depth + 1) if depth < 2 else "…"
                for k, v in items}
    if isinstance(value, list):
        return [_preview(v, depth + 1) if depth < 2 else "…" for v in value[:4]]
    if isinstance(value, str):
        return value[: _VALUE_SHOWN + 1]
    if isinstance(value, HugeInt):
        return repr(value)
    return value


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model class whose fields sit at ``loc`` (for 'did you mean')."""
    model: type[BaseModel] = Case
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        found = None
        for arg in _flatten(field.annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                found = arg
        if found is None:
            return None
        model = found
    return model


def _range_hint(loc: tuple[int | str, ...]) -> str:
    """'from 0 to 999' for the number field at ``loc`` (from its Ge/Le
    constraints), or '' when it has none."""
    names = [i for i, part in enumerate(loc) if isinstance(part, str)]
    if not names:
        return ""
    last = names[-1]
    model = _model_at(tuple(loc[:last]))
    field = model.model_fields.get(str(loc[last])) if model is not None else None
    if field is None:
        return ""
    metadata = list(field.metadata)
    for arg in _flatten(field.annotation):
        metadata += getattr(arg, "metadata", None) or []
    lo = next((m.ge for m in metadata if hasattr(m, "ge")), None)
    hi = next((m.le for m in metadata if hasattr(m, "le")), None)
    if lo is not None and hi is not None:
        return f"from {lo:g} to {hi:g}"
    if hi is not None:
        return f"at most {hi:g}"
    return ""


def _out_of_range(value: Any, loc: tuple[int | str, ...]) -> str:
    size = (f"a {value.digits}-digit number" if isinstance(value, HugeInt)
            else f"a {len(str(abs(value)))}-digit number")
    hint = _range_hint(loc)
    return f"number out of range ({size}); expected " + (hint or "a plausible value")


def _flatten(annotation: Any) -> list[Any]:
    args = get_args(annotation)
    if not args:
        return [annotation]
    out: list[Any] = []
    for arg in args:
        out += _flatten(arg)
    return out


def _expected(err: Mapping[str, Any], path: str) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    value = err.get("input")
    # A whole number too long for a float (or for Python): out of range, not
    # "expected a number, not int".
    if isinstance(value, HugeInt) or (
            kind in ("float_type", "float_parsing", "finite_number") and type(value) is int):
        return _out_of_range(value, tuple(err["loc"]))
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        parent = _model_at(tuple(err["loc"][:-1]))
        name = for_terminal(str(err["loc"][-1]), limit=_KEY_SHOWN)
        if parent is not None:
            import difflib  # only an invalid file needs it (cold start)

            close = difflib.get_close_matches(name, list(parent.model_fields), n=1, cutoff=0.6)
            if close:
                return f"unknown field `{name}`; did you mean `{close[0]}`?"
            known = ", ".join(parent.model_fields)
            return f"unknown field `{name}`; known fields here: {known}"
        return f"unknown field `{name}`"
    if err.get("input", "") is None and kind != "missing":
        return "null is not allowed here (leave an optional field out instead)"
    if kind == "literal_error":
        if path.startswith("red_flags"):
            return "unknown red flag; known red flags: " + ", ".join(KNOWN_RED_FLAGS)
        if path.endswith(".exercise"):
            return "unknown exercise id; known ids: " + ", ".join(KNOWN_EXERCISES)
        if path == "schema_version":
            versions = ", ".join(str(v) for v in SUPPORTED_SCHEMA_VERSIONS)
            return f"unsupported schema version; supported: {versions}"
        return f"expected one of {ctx.get('expected', '')}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"expected a whole number, not {_json_kind(err.get('input'))}"
    if kind == "finite_number":
        return "expected a finite number"
    if kind in ("float_type", "float_parsing"):
        return f"expected a number, not {_json_kind(err.get('input'))}"
    if kind in ("string_type",):
        return "expected a string"
    if kind == "bool_type":
        return "expected true or false"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "expected an object"
    if kind == "list_type":
        return "expected a list"
    if kind == "greater_than_equal":
        return f"expected a value ≥ {ctx['ge']}"
    if kind == "less_than_equal":
        return f"expected a value ≤ {ctx['le']}"
    if kind == "greater_than":
        return f"expected a value > {ctx['gt']}"
    if kind == "less_than":
        return f"expected a value < {ctx['lt']}"
    if kind == "too_short":
        return f"expected at least {ctx.get('min_length')} item(s)"
    if kind == "too_long":
        return f"expected at most {ctx.get('max_length')} item(s)"
    if kind == "string_too_short":
        return f"expected at least {ctx.get('min_length')} character(s)"
    if kind == "string_too_long":
        return f"expected at most {ctx.get('max_length')} characters"
    if kind == "string_pattern_mismatch":
        if path == "case_id":
            return "expected 1–64 characters from A-Z a-z 0-9 . _ -"
        return f"expected text matching {ctx.get('pattern')}"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    return str(err["msg"])


def expectation(err: Mapping[str, Any], path: str) -> str:
    """What was expected, in the words a case file's errors use, for one
    pydantic error ``err`` at ``path`` (for a part of a case, such as a
    prescription, validated on its own). An unknown field is the caller's to
    word: the hint lists the fields of the case model at that path."""
    return _expected(err, path)


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, float):
        return "a fraction" if math.isfinite(value) else "an infinite number"
    if isinstance(value, str):
        return "a string (write the number without quotes)"
    if value is None:
        return "null"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _pydantic_errors(exc: ValidationError) -> list[FieldError]:
    # Imported here: only an invalid file needs its paths written, and a
    # valid one (every `calfrehab next`) spares the module and its regular
    # expressions, about 0.4 ms of CPU (issue 28 item 4).
    from calfrehab.engine.casefile.docpath import format_path

    out = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        # A key from the case may hold anything (a newline, ESC, 10 MB).
        path = for_terminal(format_path(loc), limit=_PATH_SHOWN)
        value = None if err["type"] == "missing" else _show(err.get("input"))
        if err["type"] == "extra_forbidden":
            value = None
        out.append(FieldError(path, _expected(err, path), value))
    return out


def _as_date(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        return None
    # An out-of-range date is its own field error; comparing others to it
    # would only add noise.
    return parsed if EARLIEST_DATE <= parsed <= LATEST_DATE else None


def _cross_field_errors(doc: Mapping[str, Any]) -> list[FieldError]:
    """Rules that span fields, checked on the raw document so that they are
    reported together with the field errors of the same file."""
    errors: list[FieldError] = []
    review = _as_date(doc.get("review_date"))

    program = doc.get("program")
    if isinstance(program, Mapping):
        for track in TRACKS:
            rx = program.get(track)
            if isinstance(rx, Mapping) and isinstance(rx.get("exercise"), str):
                ex = rx["exercise"]
                if ex in EXERCISES and EXERCISES[ex][0] != track:
                    errors.append(
                        FieldError(
                            f"program.{track}.exercise",
                            f"`{ex}` belongs to the {EXERCISES[ex][0]} track, not {track}; "
                            f"expected one of {', '.join(exercises_on(track))}",
                            _show(ex),
                        )
                    )

    for key in ("sessions", "assessments"):
        items = doc.get(key)
        if review is None or not isinstance(items, list):
            continue
        for i, item in enumerate(items):
            when = _as_date(item.get("date")) if isinstance(item, Mapping) else None
            if when is not None and when > review:
                errors.append(
                    FieldError(
                        f"{key}[{i}].date",
                        f"is after review_date {review.isoformat()}; expected on or before it",
                        _show(item["date"]),
                    )
                )

    condition = doc.get("condition")
    if isinstance(condition, Mapping) and condition.get("kind") == "achilles_rupture":
        for field in ("injury_date", "management"):
            if condition.get(field) is None:
                errors.append(
                    FieldError(
                        f"condition.{field}",
                        "required when condition.kind is achilles_rupture",
                    )
                )

    if isinstance(condition, Mapping):
        injury = _as_date(condition.get("injury_date"))
        surgery = _as_date(condition.get("surgery_date"))
        for field in ("onset_date", "injury_date", "surgery_date"):
            when = _as_date(condition.get(field))
            if review is not None and when is not None and when > review:
                errors.append(FieldError(
                    f"condition.{field}",
                    f"is after review_date {review.isoformat()}; expected on or before it",
                    _show(condition[field])))
        if injury is not None and surgery is not None and surgery < injury:
            # Week gates count from surgery: a date before the injury would
            # open every gate early.
            errors.append(FieldError(
                "condition.surgery_date",
                f"is before injury_date {injury.isoformat()}; expected on or after it",
                _show(condition["surgery_date"])))

    flags = doc.get("red_flags")
    if isinstance(flags, list):
        seen: set[str] = set()
        for i, flag in enumerate(flags):
            if isinstance(flag, str) and flag in seen:
                errors.append(
                    FieldError(f"red_flags[{i}]", "red flag listed twice; expected each once",
                               _show(flag))
                )
            if isinstance(flag, str):
                seen.add(flag)

    side = condition.get("side") if isinstance(condition, Mapping) else None
    assessments = doc.get("assessments")
    if side in ("left", "right") and isinstance(assessments, list):
        for i, item in enumerate(assessments):
            test = item.get("heel_raise_test") if isinstance(item, Mapping) else None
            if isinstance(test, Mapping) and "involved" in test and test.get("uninvolved") is None:
                errors.append(
                    FieldError(
                        f"assessments[{i}].heel_raise_test.uninvolved",
                        "required field is missing (it may be absent only for side: both)",
                    )
                )
    return errors


def validate_document(doc: Any, source: str = "<case>") -> Case:
    """Validate a parsed JSON document; raise CaseValidationError with every
    problem, or return the Case."""
    if not isinstance(doc, Mapping):
        raise CaseValidationError(
            source, [FieldError("", "expected a JSON object at the top level", _show(doc))]
        )
    errors: list[FieldError] = []
    case: Case | None = None
    try:
        case = Case.model_validate(doc)
    except ValidationError as exc:
        errors += _pydantic_errors(exc)
    errors += _cross_field_errors(doc)
    if errors or case is None:
        raise CaseValidationError(source, errors)
    return case


def validate_text(text: str, source: str = "<case>") -> tuple[Case, dict[str, Any]]:
    """Parse and validate JSON text; returns the Case and the raw document
    (kept for provenance and for the audit trail)."""
    doc = parse_json(text, source)
    case = validate_document(doc, source)
    return case, doc


def read_input_text(path: Path | str) -> tuple[str, str]:
    """The UTF-8 text of an input file (``-``: standard input) and its name.

    Only a regular file is read, and no more than the input size cap
    (:mod:`calfrehab.engine.safeio`): a FIFO or ``/dev/zero`` is an error,
    not a hang. Case files and FHIR Bundles are both read through here."""
    source = "<stdin>" if str(path) == "-" else str(path)
    try:
        data = read_input_bytes(path, cap_bytes=max_input_bytes())
    except InputError as exc:
        raise CaseValidationError(source, [FieldError("", exc.reason)]) from None
    try:
        # One byte-order mark is allowed (EHR exports on Windows often start
        # with one); parse_json removes it and refuses a second.
        return data.decode("utf-8"), source
    except UnicodeDecodeError:
        raise CaseValidationError(source, [FieldError("", "not UTF-8 text")]) from None


def read_case_file(path: Path | str) -> tuple[Case, dict[str, Any]]:
    """Read, parse and validate a case file (``-``: standard input), read
    as :func:`read_input_text` reads any input."""
    text, source = read_input_text(path)
    return validate_text(text, source)


