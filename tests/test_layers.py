"""The import contract: each engine layer imports only the layers below it,
and the CLI imports only the public API.

The layer order is read from the module map in ``calfrehab/engine/__init__.py``
(one bullet a layer, lowest first), so the map a maintainer reads and the rule
this test enforces cannot drift apart. Every import counts: module level,
inside functions (lazy) and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import calfrehab.engine

PACKAGE = Path(calfrehab.engine.__file__).resolve().parents[1]  # .../calfrehab
ENGINE = "calfrehab.engine"
API = f"{ENGINE}.api"
# The shipped knowledge base is data; any layer may read it.
DATA = "calfrehab.rules"


def layer_order() -> list[tuple[str, ...]]:
    """The engine's layers, lowest first, from its docstring's module map:
    ``- ``a``, ``b``: what they own``."""
    doc = calfrehab.engine.__doc__ or ""
    layers = [tuple(re.findall(r"``(\w+)``", head))
              for head in re.findall(r"^- (.+?):", doc, flags=re.MULTILINE)]
    return [names for names in layers if names]


LAYERS = layer_order()
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> list[tuple[str, Path]]:
    return sorted((module_name(p), p) for p in PACKAGE.rglob("*.py"))


KNOWN = {name for name, _ in modules()}


def imports_of(name: str, path: Path) -> set[str]:
    """The calfrehab modules ``path`` imports, resolved to module names
    (``from calfrehab.engine import api`` is ``calfrehab.engine.api``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in KNOWN else base)
    return {m for m in found if m == "calfrehab" or m.startswith("calfrehab.")}


def layer_of(module: str) -> str | None:
    """The layer name of an engine module: its first part below the engine."""
    if not module.startswith(ENGINE + "."):
        return None
    return module.removeprefix(ENGINE + ".").split(".")[0]


def test_the_module_map_lists_layers() -> None:
    # The parser above must see the map; an empty order would pass anything.
    assert len(LAYERS) >= 8
    assert LAYERS[0][0] == "vocabulary" and LAYERS[-1] == ("api",)


def test_every_engine_module_is_in_a_layer() -> None:
    layers = {layer_of(m) for m, _ in modules()}
    unplaced = sorted(name for name in layers if name is not None and name not in RANK)
    assert not unplaced, (
        f"engine modules in no layer: {unplaced}; add them to the module map in "
        "calfrehab/engine/__init__.py"
    )


@pytest.mark.parametrize(("module", "path"), [(m, p) for m, p in modules()
                                               if layer_of(m) is not None],
                         ids=lambda v: v if isinstance(v, str) else "")
def test_an_engine_module_imports_only_lower_layers(module: str, path: Path) -> None:
    own = layer_of(module)
    assert own is not None
    wrong = []
    for target in sorted(imports_of(module, path)):
        if target == DATA or target.startswith(DATA + "."):
            continue
        layer = layer_of(target)
        if layer is None:
            wrong.append(f"{target} (outside the engine)")
        elif layer in RANK and own in RANK and RANK[layer] > RANK[own]:
            wrong.append(f"{target} (layer `{layer}` is above `{own}`)")
    assert not wrong, f"{module} imports upward: {', '.join(wrong)}"


@pytest.mark.parametrize(("module", "path"), [(m, p) for m, p in modules()
                                               if m.split(".")[1:2] not in (["engine"], ["rules"])
                                               and m != "calfrehab"],
                         ids=lambda v: v if isinstance(v, str) else "")
def test_the_cli_imports_only_the_public_api(module: str, path: Path) -> None:
    own_package = ".".join(module.split(".")[:2])  # calfrehab.cli
    wrong = sorted(t for t in imports_of(module, path)
                   if t != API and t != own_package and not t.startswith(own_package + "."))
    assert not wrong, f"{module} imports beneath the API: {', '.join(wrong)}"


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    # The contract is only as good as the import reader: a lazy import of
    # the API inside a function in the inference layer must be caught.
    src = tmp_path / "bad.py"
    src.write_text("def f():\n    from calfrehab.engine import api\n    return api\n")
    found = imports_of(f"{ENGINE}.inference.bad", src)
    assert found == {API}
    assert RANK[layer_of(API) or ""] > RANK["inference"]


def test_every_public_name_of_the_api_resolves() -> None:
    from calfrehab.engine import api

    missing = [name for name in api.__all__ if getattr(api, name, None) is None]
    assert not missing
