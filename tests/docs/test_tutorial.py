"""The tutorial and the rule-language worked example show what the program
prints today.

Both pages are made by ``scripts/capture_docs.py``, which runs every command
they show; ``--check`` runs them again and compares, ignoring only decision
ids, times, batch timings and temporary paths. A change to the rules (their
version or sha256), to a command's output or to an example makes this test
fail until the pages are regenerated (``python scripts/capture_docs.py``)
and re-read.
"""

from __future__ import annotations

import subprocess
import sys

from helpers import REPO

ROOT = REPO


def test_tutorial_and_worked_example_show_current_output() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "capture_docs.py"), "--check"],
        cwd=ROOT, capture_output=True, text=True, encoding="utf-8", timeout=300, check=False,
    )
    assert result.returncode == 0, (
        "docs/tutorial.md or the worked example in docs/rule-language.md is stale "
        "(or could not be captured); run `python scripts/capture_docs.py` and read "
        f"the result\n{result.stdout}\n{result.stderr}")
