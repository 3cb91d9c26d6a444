"""A case file written back in the form it was read: every value the edit
left alone keeps its bytes (a clinician's compact one-line objects, their
spacing and order), and only what changed is written anew.

``calfrehab log`` adds one session; re-encoding the whole document put
every hand-formatted one-line object on many lines, a diff of the whole
file for one entry. Here the text read is scanned once for where each value
sits, the edited document is compared with it, and only changed values are
replaced: a new member or list item goes in after its neighbour with the
separator the file already uses between them, in the file's indentation
(``Layout``). A container whose members were removed or reordered is
encoded anew, its unchanged members still kept as they were. The result is
parsed back and compared with the document: anything but the same values
(it should never happen) falls back to encoding the whole document.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["rewrite"]

_DECODER = json.JSONDecoder()
_WS = re.compile(r"[ \t\n\r]*")
_LINE_BREAK = re.compile(r"[\r\n]")


@dataclass
class _Node:
    """A value of the text read: where it starts and ends, and for an
    object or array where each member is."""

    value: Any
    start: int
    end: int
    keys: dict[str, int] = field(default_factory=dict)  # object: key -> where its name starts
    members: dict[str, _Node] = field(default_factory=dict)
    items: list[_Node] = field(default_factory=list)


class _Unspliceable(Exception):
    """The text is not one the splicer follows (duplicate keys): encode anew."""


def _skip(text: str, i: int) -> int:
    found = _WS.match(text, i)
    assert found is not None  # a pattern of only `*` matches everywhere, if empty
    return found.end()


def _scan(text: str, i: int) -> _Node:
    i = _skip(text, i)
    opener = text[i]
    if opener == "{":
        node = _Node({}, i, i)
        j = _skip(text, i + 1)
        if text[j] != "}":
            while True:
                key_at = j
                key, j = _DECODER.raw_decode(text, j)
                if key in node.members:
                    raise _Unspliceable
                j = _skip(text, j) + 1  # the colon
                child = _scan(text, j)
                node.keys[key], node.members[key] = key_at, child
                node.value[key] = child.value
                j = _skip(text, child.end)
                if text[j] == "}":
                    break
                j = _skip(text, j + 1)  # the comma
        node.end = j + 1
        return node
    if opener == "[":
        node = _Node([], i, i)
        j = _skip(text, i + 1)
        if text[j] != "]":
            while True:
                child = _scan(text, j)
                node.items.append(child)
                node.value.append(child.value)
                j = _skip(text, child.end)
                if text[j] == "]":
                    break
                j = _skip(text, j + 1)
        node.end = j + 1
        return node
    value, end = _DECODER.raw_decode(text, i)
    return _Node(value, i, end)


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON text would be: types, key order and all (1 is not 1.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


Encode = Callable[[Any, int], str]


class _Splicer:
    def __init__(self, text: str, encode: Encode) -> None:
        self.text = text
        self.encode = encode  # a value in the file's layout, at a nesting level

    def render(self, new: Any, node: _Node | None, level: int) -> str:
        if node is not None and _same(new, node.value):
            return self.text[node.start:node.end]
        if node is not None and isinstance(new, dict) and isinstance(node.value, dict):
            return self._object(new, node, level)
        if node is not None and isinstance(new, list) and isinstance(node.value, list):
            return self._array(new, node, level)
        return self.encode(new, level)

    def _separator(self, spans: list[tuple[int, int]], node: _Node) -> str:
        """What the file puts between two members of ``node``: as between
        its first two, else a line break and the first's indentation when it
        spans lines, else ", "."""
        if len(spans) >= 2:
            return self.text[spans[0][1]:spans[1][0]]
        first = spans[0][0]
        if _LINE_BREAK.search(self.text, node.start, node.end):
            line_start = max(self.text.rfind("\n", 0, first), self.text.rfind("\r", 0, first)) + 1
            indent = self.text[line_start:first]
            if not indent.strip():
                # The line break the file uses there: CRLF from Windows, CR
                # alone from an old Mac, else LF.
                before = self.text[max(line_start - 2, 0):line_start]
                return "," + ("\r\n" if before == "\r\n" else before[-1:]) + indent
        return ", "

    def _splice(self, node: _Node, edits: list[tuple[int, int, str]]) -> str:
        out, at = [], node.start
        for start, end, replacement in sorted(edits, key=lambda e: (e[0], e[1])):
            out += [self.text[at:start], replacement]
            at = end
        out.append(self.text[at:node.end])
        return "".join(out)

    def _object(self, new: dict[str, Any], node: _Node, level: int) -> str:
        old = list(node.members)
        kept = [k for k in new if k in node.members]
        if not old or kept != old:  # a member removed, or the order changed
            return self._anew_object(new, node, level)
        spans = [(node.keys[k], node.members[k].end) for k in old]
        sep = self._separator(spans, node)
        edits: list[tuple[int, int, str]] = []
        previous: str | None = None
        for key, value in new.items():
            member = f"{json.dumps(key, ensure_ascii=False)}: "
            child = node.members.get(key)
            if child is not None:
                if not _same(value, child.value):
                    edits.append((child.start, child.end, self.render(value, child, level + 1)))
                previous = key
                continue
            text = member + self.encode(value, level + 1)
            if previous is None:  # before the first member there was
                at = node.keys[old[0]]
                edits.append((at, at, text + sep))
            else:
                at = node.members[previous].end
                edits.append((at, at, sep + text))
        return self._splice(node, edits)

    def _anew_object(self, new: dict[str, Any], node: _Node, level: int) -> str:
        # Encoded in the layout, each member's value still spliced.
        marks = {k: f"\x00{i}\x00" for i, k in enumerate(new)}
        text = self.encode({k: marks[k] for k in new}, level)
        for key, mark in marks.items():
            text = text.replace(json.dumps(mark), self.render(new[key], node.members.get(key),
                                                               level + 1), 1)
        return text

    def _array(self, new: list[Any], node: _Node, level: int) -> str:
        old = node.items
        if not old:
            return self.encode(new, level)
        spans = [(n.start, n.end) for n in old]
        sep = self._separator(spans, node)
        # Items inserted among unchanged ones (a session added, in date
        # order): the old ones found in order, the rest new.
        matched: list[_Node | None] = []
        j = 0
        for value in new:
            if j < len(old) and _same(value, old[j].value):
                matched.append(old[j])
                j += 1
            else:
                matched.append(None)
        if j < len(old):
            if len(new) < len(old):
                return self.encode(new, level)
            # Items changed in place (the last session's next morning), and
            # any added after them.
            matched = [*old, *([None] * (len(new) - len(old)))]
        edits: list[tuple[int, int, str]] = []
        last_old: _Node | None = None
        pending_before: list[str] = []
        for value, item in zip(new, matched, strict=True):
            if item is None:
                text = self.encode(value, level + 1)
                if last_old is None:
                    pending_before.append(text)
                else:
                    edits.append((last_old.end, last_old.end, sep + text))
                continue
            if not _same(value, item.value):
                edits.append((item.start, item.end, self.render(value, item, level + 1)))
            if last_old is None and pending_before:
                edits.append((item.start, item.start, sep.join(pending_before) + sep))
                pending_before = []
            last_old = item
        return self._splice(node, edits)


def rewrite(original: str, document: Any, encode: Encode) -> str | None:
    """``document`` as text in the form of ``original`` (the text it was
    read from), or None when it cannot be (then encode it whole)."""
    try:
        root = _scan(original, 0)
    except (_Unspliceable, ValueError, IndexError):
        return None
    body = _Splicer(original, encode).render(document, root, 0)
    text = original[:root.start] + body + original[root.end:]
    try:
        back = json.loads(text)
    except ValueError:
        return None
    return text if _same(back, document) else None
