"""The API's edge for a program's own mistakes: an argument of the wrong type.

A clinic's program that passes ``42`` where a path goes, or a dict where a
:class:`Reasoner` goes, used to get whatever the code inside tripped on
(``TypeError: expected str, bytes or os.PathLike object``, ``AttributeError:
'int' object has no attribute 'compiled'``, a pydantic ``ValidationError``
about a model it never saw). Every function ``calfrehab.engine.api`` serves
is wrapped here: when one of those escapes and an argument does not match
its parameter's annotation, the caller gets :class:`ArgumentError` naming
the function, the parameter, the value and what was expected. Nothing is
checked on a call that succeeds (the wrapper costs one frame), and an error
with every argument of the right type is re-raised as it is: that is a bug
of calfrehab's, and ``tests/engine/api/test_api_errors.py`` finds it.

Annotations are read as written (``from __future__ import annotations``
keeps them as text, and some name types imported only for type checkers):
each ``|`` alternative is matched by its outer name; a name this module
cannot resolve to a class counts as a match, so an argument is blamed only
when it certainly does not fit.
"""

from __future__ import annotations

import ast
import collections.abc
import functools
import inspect
import linecache
import os
import sys
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime, tzinfo
from typing import Any, TypeVar

from calfrehab.engine.errors import ArgumentError, CalfrehabError

F = TypeVar("F", bound=Callable[..., Any])

# What escapes when code is handed the wrong type (pydantic's
# ValidationError and json's JSONDecodeError are ValueErrors).
_TRIPPED = (TypeError, AttributeError, ValueError, KeyError, IndexError)

_PATHLIKE: tuple[type, ...] = (str, os.PathLike)
_BUILTIN: dict[str, tuple[type, ...]] = {
    "str": (str,), "int": (int,), "float": (int, float), "bool": (bool,), "bytes": (bytes,),
    "Path": _PATHLIKE, "PathLike": _PATHLIKE, "StrPath": _PATHLIKE,
    "date": (date,), "datetime": (datetime,), "tzinfo": (tzinfo,),
    "dict": (Mapping,), "Mapping": (Mapping,), "list": (list, tuple), "tuple": (tuple, list),
    "Sequence": (Sequence,), "set": (set, frozenset), "frozenset": (set, frozenset),
}


def _split_top_level(text: str, separator: str) -> list[str]:
    """``text`` split on ``separator`` outside brackets, each part stripped."""
    out, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        elif ch == separator and depth == 0:
            out.append(text[start:i].strip())
            start = i + 1
    out.append(text[start:].strip())
    return out


def _alternatives(annotation: str) -> list[str]:
    """``A[x | y] | None`` -> ``["A[x | y]", "None"]``: split on top-level bars."""
    return _split_top_level(annotation, "|")


def _first_argument(inner: str) -> str | None:
    """``X`` of ``list[X]`` or ``tuple[X, ...]``; None where the elements
    differ by place (``tuple[str, int]``)."""
    parts = _split_top_level(inner.removesuffix("]"), ",")
    if len(parts) == 1 or (len(parts) == 2 and parts[1] == "..."):
        return parts[0]
    return None


_ELEMENTS = ("Iterable", "Sequence", "Collection", "list", "tuple", "set", "frozenset")
# Elements looked at, at most: enough to blame a wrong list, never a long walk.
_ELEMENTS_CHECKED = 100


def _fits_one(value: object, alt: str, names: Mapping[str, Any]) -> bool:
    outer, _, inner = alt.partition("[")
    outer = outer.strip().rpartition(".")[2]  # os.PathLike -> PathLike
    if outer in ("Any", "object"):
        return True
    if outer == "None":
        return value is None
    if outer == "Literal":
        try:
            allowed = ast.literal_eval(f"({inner.removesuffix(']')},)")
        except (ValueError, SyntaxError):
            return True
        return value in allowed
    if outer == "Callable":
        return callable(value)
    if outer in ("Iterable", "Iterator", "Collection"):
        fits = isinstance(value, Iterable)
    elif outer in _BUILTIN:
        if outer in ("Sequence", "list", "tuple") and isinstance(value, str | bytes):
            return False
        if outer in ("int", "float") and isinstance(value, bool):
            return False
        fits = isinstance(value, _BUILTIN[outer])
    else:
        return _fits_named(value, _resolve(alt.partition("[")[0].strip(), names))
    element = _first_argument(inner) if inner and outer in _ELEMENTS else None
    if fits and element is not None and isinstance(
            value, list | tuple | set | frozenset | str | dict):
        return all(_fits(one, element, names)
                   for one, _ in zip(value, range(_ELEMENTS_CHECKED), strict=False))
    return fits


def _resolve(dotted: str, names: Mapping[str, Any]) -> object:
    """``threading.Event`` -> the class, through the module's names."""
    first, *rest = dotted.split(".")
    # A module named only for type checkers (``threading``) is often loaded.
    found: object = names.get(first, sys.modules.get(first) if rest else None)
    for part in rest:
        found = getattr(found, part, None)
    return found


def _fits_named(value: object, found: object) -> bool:
    """A name the function's module (or the API) binds: a class, or an
    alias of a callable type (``Ask``, ``Clock``)."""
    if typing.get_origin(found) is collections.abc.Callable:
        return callable(value)
    if not isinstance(found, type):
        return True  # a TypeVar, an alias, a name only type checkers see
    try:
        return isinstance(value, found)
    except TypeError:  # a class isinstance refuses (typing's special forms)
        return True


def _fits(value: object, annotation: object, names: Mapping[str, Any]) -> bool:
    if annotation is inspect.Parameter.empty:
        return True
    if not isinstance(annotation, str):
        annotation = getattr(annotation, "__name__", str(annotation))
    return any(_fits_one(value, alt, names) for alt in _alternatives(str(annotation)))


def _misfit(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
            exc: BaseException | None = None) -> ArgumentError | None:
    """The first argument that does not fit its annotation, as an error; or,
    for a KeyError, the mapping given that the failing line read the key from."""
    signature = inspect.signature(fn)
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as unbound:  # a missing or unknown argument
        return ArgumentError(fn.__name__, None, None,
                             str(unbound).removeprefix(f"{fn.__name__}() "))
    # The function's own module first, the API's classes only for a name
    # it lacks: those import the engine, the batch pool and the trail, which
    # case_lock's check before every call (below) must not load.
    names = _Names(getattr(fn, "__globals__", {}))
    for name, value in bound.arguments.items():
        param = signature.parameters[name]
        values: Iterable[object] = (value.values() if param.kind is param.VAR_KEYWORD
                                    else value if param.kind is param.VAR_POSITIONAL
                                    else (value,))
        for one in values:
            if not _fits(one, param.annotation, names):
                return ArgumentError(fn.__name__, name, one, str(param.annotation))
    if isinstance(exc, KeyError) and exc.args:
        key = exc.args[0]
        # Only the mapping the failing line was reading: a KeyError of
        # calfrehab's own is never blamed on the caller by coincidence.
        lacking = [(name, value) for name, value in bound.arguments.items()
                   if isinstance(value, Mapping) and key not in value
                   and _read_by_failing_line(value, key, exc)]
        if len(lacking) == 1:
            name, value = lacking[0]
            return ArgumentError(fn.__name__, name, value,
                                 f"{signature.parameters[name].annotation} with key {key!r}")
    return None


def _read_by_failing_line(value: object, key: object, exc: BaseException) -> bool:
    """Whether the line that raised reads ``key`` from a local that is
    ``value`` (``c["fact"]`` with ``c`` the mapping given)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return False
    line = linecache.getline(tb.tb_frame.f_code.co_filename, tb.tb_lineno)
    return any(v is value and (f"{local}[{key!r}]" in line or f'{local}["{key}"]' in line)
               for local, v in tb.tb_frame.f_locals.items())


class _Names(Mapping[str, Any]):
    """A module's names, then the API's classes (:func:`_api_names`),
    imported only when a name is missing from the module's."""

    def __init__(self, own: Mapping[str, Any]) -> None:
        self.own = own

    def __getitem__(self, name: str) -> Any:
        return self.own[name] if name in self.own else _api_names()[name]

    def __iter__(self) -> Iterator[str]:
        return iter({**_api_names(), **self.own})

    def __len__(self) -> int:
        return len({**_api_names(), **self.own})


@functools.cache
def _api_names() -> dict[str, Any]:
    # The API's classes (Reasoner, Decided, Case, AuditTrail ...) by name,
    # for annotations whose module imports them only for type checkers.
    import calfrehab.engine.api.deciding as deciding
    from calfrehab.engine.batch.local import ProgressFn
    from calfrehab.engine.knowledge.compiler import CompiledRuleBase
    from calfrehab.engine.knowledge.ladder import Ladder
    from calfrehab.engine.trail.audit import AuditTrail

    return {**vars(deciding), "Ladder": Ladder, "AuditTrail": AuditTrail,
            "CompiledRuleBase": CompiledRuleBase, "ProgressFn": ProgressFn}


def guarded(fn: F) -> F:
    """``fn`` with a wrong-typed argument reported as :class:`ArgumentError`
    (see the module's docstring)."""

    # A context manager's body runs at ``with``, past this wrapper: its
    # arguments are checked before the call instead (case_lock; not hot).
    first = inspect.isgeneratorfunction(inspect.unwrap(fn))

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        if first:
            wrong = _misfit(fn, args, kwargs)
            if wrong is not None:
                raise wrong
        try:
            return fn(*args, **kwargs)
        except CalfrehabError:
            raise
        except _TRIPPED as exc:
            wrong = _misfit(fn, args, kwargs, exc)
            if wrong is None:
                raise
            raise wrong from exc

    return call  # type: ignore[return-value]


def guard_value(value: object) -> object:
    """What the API serves for ``value``: a plain function guarded, anything
    else (a class, a constant, a type alias) as it is.

    The guarded function names the API package as its module: pickle finds
    a function by its module and name and insists on the very object, so
    with the defining module named (what ``functools.wraps`` copies) it
    would find the unguarded original and refuse (``PicklingError: ... not
    the same object``), and a clinic's program could no longer hand an API
    function to a process pool. The package stores what it serves, so
    ``calfrehab.engine.api.<name>`` is this very wrapper."""
    if not inspect.isfunction(value):
        return value
    served = guarded(value)
    served.__module__ = __name__.rpartition(".")[0]  # calfrehab.engine.api
    return served


__all__ = ["guard_value", "guarded"]
