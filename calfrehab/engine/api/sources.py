"""The kinds of source :func:`~calfrehab.engine.api.deciding.decide_and_record`
decides from besides a case file: a FHIR Bundle file, either kind of file,
and a parsed document.

Served by :mod:`calfrehab.engine.api.deciding` (and the API package) under
their own names, and defined here so that a process that only decides case
files (``calfrehab next``) does not define them: a dataclass costs about
0.3 ms to define on Python 3.11, mostly compiling its generated methods
(issue 28 item 4, cold start).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class FromBundleFile:
    """A FHIR Bundle file (``next --fhir``)."""

    path: str | Path


@dataclass(frozen=True, slots=True)
class FromEitherFile:
    """A case file or a FHIR Bundle file, told apart by content (``fhir
    export``)."""

    path: str | Path


@dataclass(frozen=True, slots=True)
class FromDocument:
    """A case document already parsed from JSON (a request's body): never
    opened as a path, even when it is a string; ``name`` is its source in
    error messages."""

    document: object
    name: str = "<case>"


__all__ = ["FromBundleFile", "FromDocument", "FromEitherFile"]
