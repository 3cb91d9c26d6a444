"""A compiled rule base kept between runs, so a one-case command (``calfrehab
next``) does not parse, validate and compile the same YAML every time
(issue 28 item 4, cold start: that is about a tenth of its CPU).

The cache only ever saves work, never changes an answer:

- The key covers everything compiling reads: the rules directory's path
  (the compiled base names its directory) and content
  (:func:`.rulebase.rulebase_sha256`, every file loading reads), every program
  limit in force (an override could make a rule base fail to load or
  compile), the Python and pydantic versions, and the name, size and
  modification time of every source file of the knowledge layer and the
  vocabulary (an edited compiler in a working tree must not meet a rule
  base compiled by the old one).
- Only a rule base that loaded and compiled is stored; every error is
  reported by compiling afresh, exactly as without the cache.
- Any problem reading or writing the cache (missing, truncated, another
  version's pickle, a read-only cache directory) means compiling afresh;
  a write goes to a temporary file renamed into place, so a reader never
  sees half a file; the oldest entries beyond :data:`KEEP` are removed.

The file is a pickle in the user's own cache directory
(``platformdirs.user_cache_dir``, ``~/.cache/calfrehab`` on Linux), which
only that user can write: the same trust as their configuration. It also
holds its key, checked on reading, so a file copied under another name is
not used.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pydantic

from calfrehab.engine.knowledge import codecache
from calfrehab.engine.knowledge.compiled import CompiledRuleBase, unpickle
from calfrehab.engine.knowledge.rulebase import rulebase_sha256
from calfrehab.engine.limits import ENV_OVERRIDES, limit
from calfrehab.engine.userdirs import user_dir

# Entries kept: every edit of a rules directory or of the knowledge code
# makes a new key, so old entries are pruned (oldest first) when one is
# written; a clinic with a few rules directories keeps all of theirs.
KEEP = 16

# Bumped when the file's layout changes (not needed for code changes: the
# key covers the source files).
_FORMAT = b"calfrehab-compiled-rules-2"  # 2: lazy rule objects (views.py)

_KNOWLEDGE = Path(__file__).resolve().parent
_SOURCES = [*sorted(_KNOWLEDGE.glob("*.py")), _KNOWLEDGE.parent / "vocabulary.py"]


def cache_dir() -> Path:
    # platformdirs' answer, without its import where that is plain (userdirs).
    return user_dir("cache") / "compiled-rules"


def cache_key(directory: Path, rules_sha256: str) -> str:
    """The key of a rules directory's compiled form under this program and
    these limits (see the module's docstring)."""
    digest = hashlib.sha256(_FORMAT + b"\0" + rules_sha256.encode() + b"\0")
    digest.update(os.fsencode(directory) + b"\0")
    digest.update(f"{sys.version}\0{pydantic.VERSION}\0".encode())
    for name in sorted(ENV_OVERRIDES):
        digest.update(f"{name}={limit(name)}\0".encode())
    for path in _SOURCES:
        st = path.stat()
        digest.update(f"{path.name}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return digest.hexdigest()


def _read(path: Path, key: str) -> CompiledRuleBase | None:
    try:
        stored_key, compiled = unpickle(path.read_bytes())
    except Exception:  # any unreadable cache means: compile afresh
        return None
    if stored_key != key or not isinstance(compiled, CompiledRuleBase):
        return None
    return compiled


def _store(path: Path, data: bytes) -> None:
    # Written to a temporary file renamed into place: a reader never sees
    # half a file.
    # Imported here: a run that finds its entry writes none (safeio says why).
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _write(path: Path, key: str, compiled: CompiledRuleBase) -> None:
    import pickle

    try:
        # Its rulesets' texts for durable-rules and what their patterns can
        # match, made now so that they are stored with it (a
        # cached_property lives in the __dict__).
        compiled.definition_texts  # noqa: B018
        compiled.acceptance_sources  # noqa: B018
        _store(path, pickle.dumps((key, compiled), protocol=pickle.HIGHEST_PROTOCOL))
        entries = sorted(path.parent.glob("*.pickle"), key=lambda p: p.stat().st_mtime_ns)
        for old in entries[:-KEEP]:
            if old != path:
                old.unlink(missing_ok=True)
                old.with_suffix(".code").unlink(missing_ok=True)
    except Exception:  # a cache that cannot be written only costs time
        pass


def _read_code(path: Path) -> None:
    with contextlib.suppress(OSError):
        codecache.load(path.read_bytes())


def keep_code(directory: Path, rules_sha256: str) -> None:
    """Store the Python code the engine generated and compiled from this
    rule base (:mod:`.codecache`) beside its compiled form, for the next
    run to load instead of compiling; nothing if no code is new, or if the
    compiled form itself is not stored."""
    data = codecache.pending()
    if data is None or not rules_sha256:
        return
    try:
        key = cache_key(directory, rules_sha256)
        path = cache_dir() / f"{key}.code"
        if path.with_suffix(".pickle").is_file():
            _store(path, data)
    except Exception:  # a cache that cannot be written only costs time
        pass


def compiled_cached(directory: Path, rules_sha256: str,
                    compile_: Callable[[], CompiledRuleBase]) -> CompiledRuleBase:
    """The compiled rule base of ``directory`` (resolved), whose content
    hashes to ``rules_sha256``:
    from the cache when it holds it under the current key, else
    ``compile_()`` (whose errors propagate), stored for the next run."""
    if not rules_sha256:
        return compile_()
    try:
        key = cache_key(directory, rules_sha256)
    except Exception:  # e.g. a bad limit override: compiling reports it
        return compile_()
    path = cache_dir() / f"{key}.pickle"
    compiled = _read(path, key)
    if compiled is not None:
        # The code generated from it, compiled by an earlier run (keep_code).
        _read_code(path.with_suffix(".code"))
    else:
        compiled = compile_()
        # Stored only if the directory did not change while it compiled (a
        # clinic editing its rules): else the key would name other content.
        if rulebase_sha256(directory) == rules_sha256:
            _write(path, key, compiled)
    return compiled
