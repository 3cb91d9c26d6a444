"""The API's edge for a program's own mistakes: an argument of the wrong type.

A clinic's program that passes ``42`` where a path goes, or a dict where a
:class:`Reasoner` goes, used to get whatever the code inside tripped on
(``TypeError: expected str, bytes or os.PathLike object``, ``AttributeError:
'int' object has no attribute 'compiled'``, a pydantic ``ValidationError``
about a model it never saw). Every function ``calfrehab.engine.api`` serves
is wrapped here: when one of those escapes, each argument is checked against
its parameter's annotation, and the first that does not fit becomes
:class:`ArgumentError` naming the function, the parameter, the value and the
annotation. Nothing is checked on a call that succeeds (the wrapper costs one
frame), and an error with every argument fitting is re-raised as it is: that
is a bug of calfrehab's, and ``tests/engine/api/test_api_errors.py`` finds it.

What "fits" means is :func:`_fits`, one rule per kind of annotation the API
uses, on the annotations evaluated (``typing.get_type_hints``, once a
function): a class by ``isinstance`` (a path also as ``str``), ``X | None``
if either fits, ``Literal`` by value, a callable type by ``callable``, a
list, tuple, set or iterable by its elements too (unless it is an iterator,
which checking would use up); ``Any``, a TypeVar, or a Protocol
``isinstance`` cannot check, fits anything. A ``KeyError`` for a key that
exactly one mapping argument lacks is blamed on that mapping (a decision
document without ``"tracks"``).
"""

from __future__ import annotations

import collections.abc
import functools
import inspect
import os
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import PurePath
from typing import Any, TypeVar

from calfrehab.engine.errors import ArgumentError, CalfrehabError

F = TypeVar("F", bound=Callable[..., Any])

# What escapes when code is handed the wrong type (pydantic's
# ValidationError and json's JSONDecodeError are ValueErrors).
_TRIPPED = (TypeError, AttributeError, ValueError, KeyError, IndexError)

# Containers whose elements are checked too: a list of ints where a list of
# Decided goes fails as surely as an int does.
_CONTAINERS = (list, tuple, set, frozenset, collections.abc.Iterable, collections.abc.Sequence,
               collections.abc.Collection)


def _fits(value: object, hint: object) -> bool:
    """Whether ``value`` fits the evaluated annotation ``hint``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, arg) for arg in args)
    if hint is type(None):
        return value is None
    if origin is typing.Literal:
        return value in args
    if origin is collections.abc.Callable or hint is collections.abc.Callable:
        return callable(value)
    if hint is float:  # PEP 484: an int is accepted where a float goes
        return isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(hint, type) and issubclass(hint, PurePath | os.PathLike):
        return isinstance(value, str | os.PathLike)
    cls = origin or hint
    if hint is Any or cls is object or not isinstance(cls, type):
        return True  # a TypeVar, an alias of no class
    if origin in _CONTAINERS and isinstance(value, str | bytes):
        return False  # a string is iterable, but never a list of names
    try:
        fits = isinstance(value, cls)
    except TypeError:  # a Protocol isinstance cannot check
        return True
    # Only a collection's elements: iterating an iterator would use it up.
    if fits and origin in _CONTAINERS and isinstance(value, collections.abc.Collection):
        element = args[0] if len(args) == 1 or args[1:] == (...,) else object
        return all(_fits(one, element) for one in value)
    return fits


@functools.cache
def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    """``fn``'s annotations evaluated, once (cached)."""
    try:
        return typing.get_type_hints(fn)
    except NameError:  # a name its module imports only for type checkers
        pass
    try:
        return typing.get_type_hints(fn, localns=_type_checking_names())
    except NameError:  # one the table lacks too: nothing is blamed (a test sees it)
        return {}


@functools.cache
def _type_checking_names() -> dict[str, Any]:
    # Imported only here, on a failed call: they load the engine, the batch
    # pool and the trail, which importing the API (and case_lock's check
    # before each call) must not. tests/engine/api/test_api_errors.py checks
    # that every function's annotations resolve.
    import threading

    from calfrehab.engine.api.deciding import Case, Decided, DecisionDocument, Reasoner
    from calfrehab.engine.batch.local import ProgressFn
    from calfrehab.engine.clinicmodels import ClinicConfig, LoadedConfig
    from calfrehab.engine.knowledge.compiler import CompiledRuleBase
    from calfrehab.engine.knowledge.ladder import Ladder
    from calfrehab.engine.ruletest.registration import RegistrationReport
    from calfrehab.engine.trail.audit import AuditTrail

    return {"threading": threading, "Case": Case, "Decided": Decided,
            "DecisionDocument": DecisionDocument, "Reasoner": Reasoner,
            "ProgressFn": ProgressFn, "CompiledRuleBase": CompiledRuleBase, "Ladder": Ladder,
            "RegistrationReport": RegistrationReport, "AuditTrail": AuditTrail,
            "ClinicConfig": ClinicConfig, "LoadedConfig": LoadedConfig}


def _misfit(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
            exc: BaseException | None = None) -> ArgumentError | None:
    """The first argument that does not fit its annotation, as an error; or,
    for a KeyError, the one mapping given that lacks the key."""
    signature = inspect.signature(fn)
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as unbound:  # a missing or unknown argument
        return ArgumentError(fn.__name__, None, None,
                             str(unbound).removeprefix(f"{fn.__name__}() "))
    hints = _hints(fn)
    for name, value in bound.arguments.items():
        param = signature.parameters[name]
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD) or name not in hints:
            continue  # the API has no *args or **kwargs; an unannotated one fits
        if not _fits(value, hints[name]):
            return ArgumentError(fn.__name__, name, value, str(param.annotation))
    if isinstance(exc, KeyError) and exc.args:
        # A document the caller built lacks a key the function reads (a
        # decision without "tracks"): blamed on the one mapping given that
        # lacks it; with two lacking it, it is not clear which, so neither.
        key = exc.args[0]
        lacking = [name for name, value in bound.arguments.items()
                   if isinstance(value, Mapping) and key not in value]
        if len(lacking) == 1:
            name = lacking[0]
            return ArgumentError(fn.__name__, name, bound.arguments[name],
                                 f"{signature.parameters[name].annotation} with key {key!r}")
    return None


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
