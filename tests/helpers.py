"""Shared test helpers: where the example folders are, building rule dirs."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

from calfrehab.engine.casefile import docpath
from calfrehab.engine.knowledge.loader import default_rules_dir

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
SHARED_EXAMPLES = REPO.parent / "shared" / "examples"


def rules_dir_with(tmp: Path, rule_files: dict[str, str], keep_shipped_rules: bool = False) -> Path:
    """A rules directory with the shipped manifest, sources, ladder and
    red-flag rules (a rule base must refer every red flag), and the given
    rule files (name -> YAML text)."""
    target = tmp / "rules"
    shipped = default_rules_dir()
    target.mkdir()
    for name in ("rulebase.yaml", "sources.yaml", "ladder.yaml", "red-flags.yaml"):
        shutil.copy(shipped / name, target / name)
    if keep_shipped_rules:
        for path in shipped.glob("*.yaml"):
            shutil.copy(path, target / path.name)
    for name, text in rule_files.items():
        (target / name).write_text(text, encoding="utf-8")
    return target


def set_path(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``doc`` with ``a.b[2].c`` set to ``value``."""
    out = copy.deepcopy(doc)
    docpath.set_path(out, path, value)
    return out
