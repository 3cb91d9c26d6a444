"""A rules directory as the engine keeps it: the checked rule base's types,
where the shipped rules are, and the sha256 of a directory's rules.

What a run needs of a rules directory when its compiled rule base comes
from the compiled-rules cache (knowledge/cache.py): the directory, its
hash (the cache's key, and the rules sha256 a decision names) and the
types the cached rule base is made of. Reading and checking the YAML is
:mod:`.loader`'s, imported only when a rule base is compiled (issue 28
item 4, cold start); it re-exports every name here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from calfrehab.engine.errors import InputError
from calfrehab.engine.knowledge.ladder import Ladder
from calfrehab.engine.limits import max_input_bytes
from calfrehab.engine.safeio import read_input_bytes

if TYPE_CHECKING:
    # Only the types: a run whose compiled rule base comes from the cache
    # imports no rule language (knowledge/views.py says why).
    from calfrehab.engine.knowledge.rulelang import Manifest, Rule, Source

MANIFEST = "rulebase.yaml"
SOURCES = "sources.yaml"
LADDER = "ladder.yaml"
RESERVED = (MANIFEST, SOURCES, LADDER)


class LocatedRule(NamedTuple):
    """A rule and where it is written: its file's name and line."""

    # A NamedTuple, not a frozen dataclass: cold start (docs/architecture.md,
    # "Small records").

    rule: Rule
    file: str
    line: int


@dataclass
class RuleBase:
    """A checked rules directory, before compiling."""

    directory: Path
    manifest: Manifest
    sources: dict[str, Source]
    ladder: Ladder
    rules: list[LocatedRule]
    sha256: str
    files: list[str] = field(default_factory=list)

    @property
    def version(self) -> str:
        return self.manifest.version

    def citation(self, key: str) -> str:
        return self.sources[key].citation


def default_rules_dir() -> Path:
    """The shipped knowledge base: ``calfrehab/rules`` inside an installed
    wheel, or ``rules/`` at the top of the working tree (an editable install,
    where the package directory is this checkout's ``calfrehab/``).

    The YAML lives at the top of the repository so that a clinician reviews
    it first; the wheel maps it into the package (see ``setup.py``), because a
    top-level ``rules`` import name would collide in site-packages.
    """
    package = Path(__file__).resolve().parents[2]  # .../calfrehab
    for candidate in (package / "rules", package.parent / "rules"):
        if (candidate / "rulebase.yaml").is_file():
            return candidate
    raise FileNotFoundError(
        f"the shipped rules are missing: neither {package / 'rules'} nor "
        f"{package.parent / 'rules'} holds rulebase.yaml (a broken install?)")


def rule_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.yaml") if p.name not in RESERVED)


def rulebase_sha256(directory: Path) -> str:
    """sha256 over the files that decide (manifest, sources, ladder, rule
    files), in name order, each as its name, a NUL, its bytes, a NUL."""
    digest = hashlib.sha256()
    for path in [directory / n for n in RESERVED] + rule_files(directory):
        if path.exists():
            try:
                data = read_input_bytes(path, cap_bytes=max_input_bytes())
            except InputError as exc:
                # Loading reports it; the hash only has to differ.
                data = b"\0unreadable\0" + exc.reason.encode()
            digest.update(path.name.encode() + b"\0" + data + b"\0")
    return digest.hexdigest()
