"""What a clinic installs: the wheel ships every module and every rule file,
and the tests themselves read the working tree (no stale installed copy)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from helpers import REPO

import calfrehab.engine

ROOT = REPO


def test_the_working_tree_is_what_is_imported() -> None:
    # An editable install (scripts/dev.py) maps calfrehab to calfrehab/ in
    # this checkout: a rename here is what the tests and mypy see.
    assert Path(calfrehab.engine.__file__).resolve().parent == ROOT / "calfrehab" / "engine"


def test_the_wheel_ships_every_module_and_rule_file(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
         "--disable-pip-version-check", "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, timeout=600,
    )
    (wheel,) = tmp_path.glob("calfrehab-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    tracked = subprocess.run(
        ["git", "ls-files", "calfrehab"], cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()
    wanted = {f for f in tracked if f.endswith((".py", ".yaml", ".typed"))}
    assert wanted, "no package files found under calfrehab/"
    assert wanted - shipped == set()
    # The knowledge base at the top of the repository ships as calfrehab/rules.
    rules = subprocess.run(
        ["git", "ls-files", "rules"], cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()
    assert any(f.endswith("rulebase.yaml") for f in rules), "no rules/ tracked"
    assert {"calfrehab/" + f for f in rules if f.endswith(".yaml")} - shipped == set()
    assert not any(name.startswith("rules/") for name in shipped), "a top-level rules/ shipped"


def test_the_editable_tree_reads_rules_at_the_top() -> None:
    from calfrehab.engine.knowledge.loader import default_rules_dir

    assert default_rules_dir() == ROOT / "rules"
