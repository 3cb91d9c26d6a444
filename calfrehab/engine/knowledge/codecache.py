"""Python code the engine generates from a compiled rule base, compiled once
and kept beside it between runs.

At ``prepare()`` the driver turns each ruleset's plan into Python source
(``inference/matchable.py``: what a fact's value must be for a pattern to
match it; ``inference/selection.py``: the facts a ruleset is sent for a
case) and compiles it: about 8 ms of a cold ``calfrehab next`` went to
``compile`` alone (issue 28 item 4). The source depends only on the
compiled rule base, so its code objects are stored with it
(:mod:`.cache` reads and writes them as a ``.code`` file beside the
compiled rule base's pickle, with the same key) and a later run finds them
here instead of compiling.

A code object is found by the exact source it was compiled from (and its
mode and file name), so a changed generator or rule base can only miss,
never run stale code; the marshal format is this Python's, which the
cache key covers. Anything unreadable is ignored (everything is compiled
afresh), as for the compiled rule base itself.
"""

from __future__ import annotations

import hashlib
import marshal
import threading
from types import CodeType

_CODES: dict[str, CodeType] = {}
_LOCK = threading.Lock()
# Whether _CODES holds code that the last load did not (so a save is due).
_added = False
# The keys of the code asked for since the last save: what a .code file
# holds, so that it keeps no code its rule base no longer asks for (a
# generator's older output, another rule base's of the same process) and
# cannot grow from run to run.
_USED: set[str] = set()


def _key(source: str, mode: str, filename: str) -> str:
    return hashlib.sha256(f"{mode}\0{filename}\0{source}".encode()).hexdigest()


def compiled(source: str, mode: str, filename: str = "<string>") -> CodeType:
    """``compile(source, filename, mode)``, from what a run before kept
    when it holds this very source."""
    global _added
    key = _key(source, mode, filename)
    code = _CODES.get(key)
    if code is None:
        code = compile(source, filename, mode)
        with _LOCK:
            _CODES[key] = code
            _added = True
    _USED.add(key)
    return code


def load(data: bytes) -> None:
    """Take the code objects of a ``.code`` file (ignored if it is not one)."""
    try:
        codes = marshal.loads(data)
    except Exception:  # any unreadable file means: compile afresh
        return
    if not isinstance(codes, dict):
        return
    with _LOCK:
        for key, code in codes.items():
            if isinstance(key, str) and isinstance(code, CodeType):
                _CODES.setdefault(key, code)
        # _added is left as it is: code compiled before this load (a
        # reasoner built outside prepare()) is still to be saved.


def pending() -> bytes | None:
    """The code asked for since the last :func:`pending` (what one rule
    base's reasoner used), as a ``.code`` file's bytes, if any of it was
    compiled since the last :func:`load` or :func:`pending`; else None."""
    global _added
    with _LOCK:
        used = [key for key in _USED if key in _CODES]
        _USED.clear()
        if not _added:
            return None
        _added = False
        return marshal.dumps({key: _CODES[key] for key in used})
