"""Shared test helpers: where the example folders are, building rule dirs."""

from __future__ import annotations

import copy
import re
import shutil
from pathlib import Path
from typing import Any

from calfrehab.engine.loader import default_rules_dir

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
SHARED_EXAMPLES = REPO.parent / "shared" / "examples"


def rules_dir_with(tmp: Path, rule_files: dict[str, str], keep_shipped_rules: bool = False) -> Path:
    """A rules directory with the shipped manifest, sources and ladder, and
    the given rule files (name -> YAML text)."""
    target = tmp / "rules"
    shipped = default_rules_dir()
    target.mkdir()
    for name in ("rulebase.yaml", "sources.yaml", "ladder.yaml"):
        shutil.copy(shipped / name, target / name)
    if keep_shipped_rules:
        for path in shipped.glob("*.yaml"):
            shutil.copy(path, target / path.name)
    for name, text in rule_files.items():
        (target / name).write_text(text, encoding="utf-8")
    return target


_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def set_path(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``doc`` with ``a.b[2].c`` set to ``value``."""
    out = copy.deepcopy(doc)
    steps = [(m.group(1), m.group(2)) for m in _STEP.finditer(path)]
    node: Any = out
    for name, index in steps[:-1]:
        node = node[name] if name is not None else node[int(index)]
    name, index = steps[-1]
    if name is not None:
        node[name] = value
    else:
        node[int(index)] = value
    return out
