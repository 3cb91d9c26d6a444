"""The installed version of a distribution, without importing
:mod:`importlib.metadata` when it is not loaded yet.

Every decision document names the versions of calfrehab and durable-rules,
and the driver reads durable-rules' to know whether its states may be
reused. :func:`importlib.metadata.version` answers, but importing that
module loads ``email``, ``zipfile``, ``csv`` and ``importlib.resources``:
about 16 ms of CPU, a twentieth of a cold ``calfrehab next`` (issue 28
item 4). For the plain case, a ``*.dist-info`` or ``*.egg-info`` directory
on ``sys.path``, the answer is one directory listing per path entry and one
small file read, and this module finds it exactly as the standard library
does: the same path order, the same name normalisation, the first match,
its ``METADATA`` (else ``PKG-INFO``) ``Version`` header.

Anything else is left to :mod:`importlib.metadata` itself: a zip file or an
``.egg`` on the path, an egg-info file rather than a directory, a header
this reader does not parse the way ``email`` would, another finder on
``sys.meta_path`` that can find distributions, or a process that has
imported :mod:`importlib.metadata` already (nothing to save there, and a
test that replaces its ``version`` sees its replacement used).
``tests/engine/core/test_distversion.py`` compares both answers.
"""

from __future__ import annotations

import os
import sys


class _Unusual(Exception):
    """A layout this reader leaves to importlib.metadata."""


def _normalise(name: str) -> str:
    # PEP 503 with dashes as underscores, as importlib.metadata's Prepared
    # does: runs of - _ . become one _, lower case.
    out: list[str] = []
    for ch in name.lower():
        if ch in "-_.":
            if not out or out[-1] != "_":
                out.append("_")
        else:
            out.append(ch)
    return "".join(out)


def _header_version(text: str) -> str:
    # The first Version header of the headers (which end at the first
    # empty line), as email's compat32 parser returns it; a folded header
    # or no Version at all is left to the standard library. Lines break
    # where email breaks them (not at \x0c, \x85 or U+2028, as splitlines
    # would), and a line email would not take for a header (it ends the
    # headers there: no colon, a space or a non-ASCII character in the
    # name) is left to the standard library too.
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for i, line in enumerate(lines):
        if not line:
            break
        if line[:1] in (" ", "\t"):
            continue  # the folded rest of another header
        name, colon, value = line.partition(":")
        if not colon or not all("!" <= ch <= "~" for ch in name):
            raise _Unusual(line)
        if name.lower() == "version":
            if lines[i + 1:i + 2] and lines[i + 1][:1] in (" ", "\t"):
                raise _Unusual(line)  # folded onto the next line
            return value.lstrip(" \t")
    raise _Unusual("no Version header")


def _read(path: str) -> str:
    for name in ("METADATA", "PKG-INFO"):
        try:
            with open(os.path.join(path, name), encoding="utf-8") as handle:
                text = handle.read()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError):
            continue
        if text:
            return _header_version(text)
    raise _Unusual(path)


def _lookup(dist: str) -> str | None:
    from importlib.machinery import PathFinder

    if any(finder is not PathFinder and hasattr(finder, "find_distributions")
           for finder in sys.meta_path):
        raise _Unusual("another distribution finder")
    wanted = _normalise(dist)
    for entry in sys.path:
        root = entry or "."
        if root.lower().endswith(".egg") or os.path.isfile(root):
            raise _Unusual(root)  # an egg or a zip: the standard library reads it
        child = _index(root).get(wanted)
        if child is not None:
            path = os.path.join(root, child)
            if not os.path.isdir(path):
                raise _Unusual(path)
            return _read(path)
    return None


# Per directory on the path (absolute): its modification time and, by
# normalised name, the first *.dist-info or *.egg-info entry of its listing.
# A decision document names two versions and the driver reads one: three
# lookups in a cold `next`, each of which listed every path entry again
# (the working directory among them, however large). Kept while the
# directory's mtime is unchanged, as importlib.metadata's FastPath keeps
# its listings.
_INDEXES: dict[str, tuple[int, dict[str, str]]] = {}


def _index(root: str) -> dict[str, str]:
    """Normalised distribution name -> the first entry of ``root``'s
    listing that names it (empty if ``root`` cannot be listed)."""
    try:
        where = os.path.abspath(root)
        mtime = os.stat(where).st_mtime_ns
    except OSError:
        return {}
    kept = _INDEXES.get(where)
    if kept is not None and kept[0] == mtime:
        return kept[1]
    try:
        children = os.listdir(where)
    except OSError:
        return {}
    index: dict[str, str] = {}
    for child in children:
        low = child.lower()
        if low.endswith((".dist-info", ".egg-info")):
            index.setdefault(_normalise(low.rpartition(".")[0].partition("-")[0]), child)
    _INDEXES[where] = (mtime, index)
    return index


def version(dist: str) -> str | None:
    """The installed version of distribution ``dist``, as
    :func:`importlib.metadata.version` gives it; None if it is not
    installed."""
    if "importlib.metadata" not in sys.modules:
        try:
            return _lookup(dist)
        except Exception:  # _Unusual, an unreadable file, an odd sys.path entry
            pass
    import importlib.metadata

    try:
        found: str | None = importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None
    return found
