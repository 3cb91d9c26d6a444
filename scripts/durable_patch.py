#!/usr/bin/env python3
"""Build durable-rules 2.0.28 with the fix calfrehab's reused states need.

    python3 scripts/durable_patch.py SDIST_DIR   # patch an unpacked sdist in place

durable-rules 2.0.28 reads and writes past a frame when a fact is retracted
after a rule that matched it and one or more other facts has fired:

- ``deleteDispatchingActionFrame`` (state.c) frees an action frame once its
  action completes, but leaves its ``isDispatching`` flag set and leaves the
  frame's location in every fact it matched;
- retracting one of those facts later finds that stale location, and
  ``deleteActionFrame`` answers ``ERR_NODE_DISPATCHING`` for the freed frame
  (it tests the flag before whether the frame is in use at all);
- so ``handleDeleteMessage`` calls ``deleteMessageFromFrame`` on the freed
  frame, which clears the fact's slot but not the frame's message count.
  Retracting the frame's second fact then scans for a slot that no longer
  exists: ``for (i = 0, c = 0; c < messageCount; ++i)`` runs past the 16
  slots of the frame, through the next frames of the pool and off the end
  of its block, and clears whatever there looks like a match.

That is the segmentation fault inside ``retract_facts`` and the corrupted
Python heap that a reused state met after thousands of cases (valgrind
shows the reads of uninitialised memory in ``deleteMessageFromFrame`` from
the third retraction of a two-fact rule on). A state deleted whole never
retracts, which is why a state per case never met it.

The fix, two small changes to state.c: ``deleteActionFrame`` answers
``ERR_NODE_DELETED`` for a frame not in use (which ``handleDeleteMessage``
already skips, as it does for every other kind of frame), and
``deleteMessageFromFrame`` never scans past a frame's slots. Nothing else
reads ``isDispatching``, so a frame in use behaves as before. The version
gets the local label ``+calfrehab.1`` (still ``==2.0.28`` to pip), which is
how the driver knows it may reuse states
(:func:`calfrehab.engine.inference.durable_host.retract_safe`). Standard
library only: ``scripts/dev.py`` runs it on the sdist before building.
"""

from __future__ import annotations

import sys
from pathlib import Path

LOCAL_LABEL = "calfrehab.1"

# (file, the exact text of 2.0.28, what replaces it)
PATCHES: tuple[tuple[str, str, str], ...] = (
    (
        "src/rules/state.c",
        "    for (int i = 0, c = 0; c < frame->messageCount; ++i) {\n",
        "    for (int i = 0, c = 0; c < frame->messageCount && i < MAX_MESSAGE_FRAMES; ++i) {\n",
    ),
    (
        "src/rules/state.c",
        "    if (targetNode->isDispatching) {\n        return ERR_NODE_DISPATCHING;\n",
        "    if (!targetNode->isActive) {\n        return ERR_NODE_DELETED;\n    }\n"
        "    if (targetNode->isDispatching) {\n        return ERR_NODE_DISPATCHING;\n",
    ),
    (
        "setup.py",
        "    version = '2.0.28',\n",
        f"    version = '2.0.28+{LOCAL_LABEL}',\n",
    ),
)


def patch(sdist: Path) -> None:
    """Apply every change to the unpacked sdist ``sdist``; each must match
    exactly once, so a different source is refused rather than half patched.

    Every change is made in memory first and the files are written only
    when all have matched: a source whose third change is missing is left
    as it was, not with its state.c fixed and its version unlabelled."""
    texts: dict[Path, str] = {}
    for name, old, new in PATCHES:
        path = sdist / name
        text = texts[path] if path in texts else path.read_text()
        if text.count(old) != 1:
            raise SystemExit(f"{path}: the text to patch is not there exactly once: {old[:60]!r}")
        texts[path] = text.replace(old, new)
    for path, text in texts.items():
        path.write_text(text)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.splitlines()[2].strip(), file=sys.stderr)
        return 2
    patch(Path(argv[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
