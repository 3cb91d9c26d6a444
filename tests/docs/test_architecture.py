"""docs/architecture.md draws the package one module per line, and cannot
go stale: every module of calfrehab/ is on it exactly once, nothing that is
not a module is, and the engine's modules are drawn in the order of the
layers .importlinter enforces (highest first). A new module fails this test
until it has its line (tests/packaging/test_layers.py checks the drawing's
import-linter report against lint-imports itself)."""

from __future__ import annotations

import ast
import configparser
import re
from pathlib import Path

from helpers import REPO

PAGE = REPO / "docs" / "architecture.md"
PACKAGE = REPO / "calfrehab"
# A drawn line: a path under calfrehab/ (or rules/), then what it owns.
_LINE = re.compile(r"^([a-z_/]+(?:\.py|/))\s{2,}\S")


def _drawing() -> list[str]:
    text = PAGE.read_text(encoding="utf-8")
    block = text.split("```\n", 2)[1]  # the first fenced block is the drawing
    return [m.group(1) for line in block.splitlines() if (m := _LINE.match(line))]


def _only_a_docstring(path: Path) -> bool:
    """An ``__init__.py`` that only names its package (a docstring, maybe
    ``from __future__``): a package, not a module worth a line."""
    body = ast.parse(path.read_text(encoding="utf-8")).body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    return all(isinstance(n, ast.ImportFrom) and n.module == "__future__" for n in body)


def _modules() -> tuple[set[str], set[str]]:
    """Every module of the package, and those that must be drawn: all but an
    ``__init__.py`` that only names its package (drawn when it says
    something worth a line, as engine/__init__.py's layer map does)."""
    every, required = set(), set()
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if "__pycache__" in rel.parts:
            continue
        every.add(rel.as_posix())
        if not (path.name == "__init__.py" and _only_a_docstring(path)):
            required.add(rel.as_posix())
    return every, required


def test_every_module_has_one_line_and_every_line_is_a_module() -> None:
    drawn = _drawing()
    assert len(drawn) > 100, "the drawing was not found: is the fenced block still first?"
    twice = sorted({d for d in drawn if drawn.count(d) > 1})
    assert twice == [], f"drawn more than once: {twice}"
    every, required = _modules()
    modules = {d for d in drawn if d.endswith(".py")}
    missing, gone = sorted(required - modules), sorted(modules - every)
    assert missing == [], f"modules missing from docs/architecture.md: {missing}"
    assert gone == [], f"docs/architecture.md names modules that are gone: {gone}"
    assert "rules/" in drawn and (REPO / "rules").is_dir()


def _engine_layers() -> list[set[str]]:
    parser = configparser.ConfigParser()
    parser.read(REPO / ".importlinter", encoding="utf-8")
    layers = parser["importlinter:contract:engine-layers"]["layers"].split("\n")
    return [set(re.split(r"\s*[|:]\s*", layer.strip())) for layer in layers if layer.strip()]


def test_the_engine_is_drawn_in_the_contract_s_layer_order() -> None:
    layers = _engine_layers()

    def level(module: str) -> int:
        name = module.removeprefix("engine/").split("/")[0].removesuffix(".py")
        hits = [i for i, layer in enumerate(layers) if name in layer]
        assert hits, f"{module}: its layer {name} is not in .importlinter's engine-layers"
        return hits[0]

    engine = [d for d in _drawing() if d.startswith("engine/") and d != "engine/__init__.py"]
    levels = [level(d) for d in engine]
    out_of_order = [(engine[i], engine[i + 1]) for i in range(len(levels) - 1)
                    if levels[i] > levels[i + 1]]
    assert out_of_order == [], "drawn above a layer it sits below"


def test_the_drawing_is_one_module_per_line_within_width() -> None:
    # Read in a terminal and in review tools: the ruled section lines stay
    # the one width the drawing uses.
    rules = [line for line in PAGE.read_text(encoding="utf-8").splitlines()
             if line.startswith("── ")]
    assert rules and len({len(line) for line in rules}) == 1, {len(r) for r in rules}
