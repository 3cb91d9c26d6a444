"""Shared test helpers: where the example folders are, building rule dirs."""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path
from typing import Any

from calfrehab.engine.casefile import docpath
from calfrehab.engine.knowledge.loader import default_rules_dir

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
# The shared contract (spec and examples) lives beside the checkout, in
# ../shared; CALFREHAB_SHARED points elsewhere (a worktree, a CI cache).
SHARED = Path(os.environ.get("CALFREHAB_SHARED") or REPO.parent / "shared")
SHARED_EXAMPLES = SHARED / "examples"


def in_ci() -> bool:
    """CI sets CI=true (GitHub, GitLab, most others)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


# A byte-for-byte copy of the contract's examples, for a clone on its own
# (tests/contract/README.md); tests/test_contract_copy.py keeps it equal.
CONTRACT_COPY = REPO / "tests" / "contract" / "examples"


def shared_examples() -> Path:
    """The shared contract's example folder: ``../shared/examples`` when it
    is beside the checkout, else the checked copy in tests/contract/, so a
    clone on its own tests the contract too, with nothing skipped."""
    return SHARED_EXAMPLES if SHARED_EXAMPLES.is_dir() else CONTRACT_COPY


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


def probe_rules(count: int, *, distinct: bool) -> str:
    """A rule file of ``count`` rules that each test patient.age_years: with
    distinct values (``distinct``) or all the same one, the two shapes that
    reach durable-rules' limits (docs/rule-language.md, Engine limits)."""
    lines = ["rules:"]
    for i in range(count):
        value = 200 + i if distinct else 5
        lines += [
            f"  - id: probe-{i}",
            "    title: An engine-limit probe",
            "    rationale: A generated rule that probes what the engine can take.",
            "    sources: [cook_purdam2009]",
            "    applies_to: {tracks: [straight_knee]}",
            "    priority: 700",
            f'    when: {{fact: patient.age_years, op: "==", value: {value}}}',
            "    then: {assert: track.blocked}",
            '    reason: "probe"',
        ]
    return "\n".join(lines) + "\n"
