"""Paths into a JSON document, written the way the spec writes them
(``sessions[2].exercises[0].pain_during``): parse, format, read, set and
remove. Error messages, provenance, case tables and tests all use these."""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from typing import Any

_PATH = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\[\d+\])*")
_STEP = re.compile(r"([A-Za-z_]\w*)|\[(\d+)\]")


class PathError(ValueError):
    pass


def parse_path(path: str) -> list[str | int]:
    """``a.b[2].c`` -> ["a", "b", 2, "c"]; a malformed path is a PathError."""
    if not _PATH.fullmatch(path):
        raise PathError(f"malformed path `{path}` "
                        "(write it as `sessions[1].exercises[0].pain_during`)")
    return [m.group(1) if m.group(1) is not None else int(m.group(2))
            for m in _STEP.finditer(path)]


def _walk(doc: Any, path: str, steps: list[str | int], create: bool) -> Any:
    node = doc
    for i, step in enumerate(steps[:-1]):
        here = format_path(steps[: i + 1])
        if isinstance(step, int):
            if not isinstance(node, list):
                raise PathError(f"`{path}`: `{format_path(steps[:i])}` is not a list")
            if step >= len(node):
                raise PathError(f"`{path}`: no item `{here}` (the list has {len(node)})")
            node = node[step]
        else:
            if not isinstance(node, dict):
                raise PathError(f"`{path}`: `{format_path(steps[:i]) or '(document)'}` "
                                "is not an object")
            if step not in node or node[step] is None:
                if not create:
                    raise PathError(f"`{path}`: no field `{here}` in the document")
                node[step] = {}
            node = node[step]
    return node


def format_path(steps: Sequence[str | int]) -> str:
    out = ""
    for s in steps:
        out += f"[{s}]" if isinstance(s, int) else (f".{s}" if out else s)
    return out


def set_path(doc: Any, path: str, value: Any) -> None:
    """Set ``path`` in ``doc`` (in place); missing objects on the way are
    created, and ``[n]`` one past the end of a list appends."""
    steps = parse_path(path)
    parent = _walk(doc, path, steps, create=True)
    last = steps[-1]
    if isinstance(last, int):
        if not isinstance(parent, list):
            raise PathError(f"`{path}`: `{format_path(steps[:-1])}` is not a list")
        if last > len(parent):
            raise PathError(f"`{path}`: index {last} is past the end (the list has "
                            f"{len(parent)}; use {len(parent)} to append)")
        if last == len(parent):
            parent.append(copy.deepcopy(value))
        else:
            parent[last] = copy.deepcopy(value)
    else:
        if not isinstance(parent, dict):
            raise PathError(f"`{path}`: `{format_path(steps[:-1])}` is not an object")
        parent[last] = copy.deepcopy(value)


def remove_path(doc: Any, path: str) -> None:
    """Delete the field or list item at ``path`` (in place)."""
    steps = parse_path(path)
    parent = _walk(doc, path, steps, create=False)
    last = steps[-1]
    if isinstance(last, int):
        if not isinstance(parent, list) or last >= len(parent):
            raise PathError(f"`{path}`: no item to remove")
        del parent[last]
    else:
        if not isinstance(parent, dict) or last not in parent:
            raise PathError(f"`{path}`: no field to remove")
        del parent[last]



def get_path(doc: Any, path: str) -> Any:
    """The value at ``path``; a PathError when it is not there."""
    steps = parse_path(path)
    parent = _walk(doc, path, steps, create=False)
    last = steps[-1]
    try:
        return parent[last]
    except (KeyError, IndexError, TypeError):
        raise PathError(f"`{path}`: not in the document") from None
