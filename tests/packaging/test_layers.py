"""The import contract (``.importlinter``) holds, and it can fail.

import-linter reads every import of the package (module level, inside
functions and under ``TYPE_CHECKING``) and checks four contracts: the front
ends sit on the engine, they use only its public API, the engine's layers
import only downward (every engine module placed in a layer), and no
package's modules import each other in a circle. ``scripts/dev.py lint``
runs the same command; running it here means the suite checks it too.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import calfrehab

ROOT = Path(calfrehab.__file__).resolve().parents[1]
CONTRACTS = ROOT / ".importlinter"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path, package_dir: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` with ``root``'s contract, on the package found in
    ``package_dir`` (first on the path, before any installed copy)."""
    assert LINT_IMPORTS.exists(), (
        f"{LINT_IMPORTS} is missing: import-linter is in the test and dev extras; "
        "reinstall with: pip install -e '.[dev]'")
    env = {**os.environ, "PYTHONPATH": str(package_dir)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", str(root / ".importlinter")],
                          cwd=root, env=env, capture_output=True, text=True, check=False)


def contract_names() -> list[str]:
    text = CONTRACTS.read_text(encoding="utf-8")
    return re.findall(r"^\[importlinter:contract:([\w-]+)\]$", text, flags=re.MULTILINE)


def test_the_contract_file_has_the_four_contracts() -> None:
    # A contract dropped from the file would pass silently: name them.
    assert contract_names() == ["front-ends", "public-api", "engine-layers", "no-circles"]


def test_the_package_keeps_every_contract() -> None:
    result = lint_imports(ROOT, ROOT)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    # Every contract was checked and kept, none skipped.
    assert f"Contracts: {len(contract_names())} kept, 0 broken." in out, out
    # docs/architecture.md quotes the report: its lines are this run's.
    assert _report(result.stdout) == _report_in_the_docs(), (
        "docs/architecture.md's lint-imports report differs from lint-imports; paste:\n"
        + "\n".join(_report(result.stdout)))


def _report(stdout: str) -> list[str]:
    """The contracts' lines and the summary, without the counts of files and
    imports (which change with every import, and say nothing of the layers);
    a contract name click wrapped is joined back into one line."""
    tail = stdout.split("Analyzed", 1)[1].split("\n", 1)[1]
    lines: list[str] = []
    pending = ""
    for raw in tail.splitlines():
        line = raw.strip()
        if not line or set(line) == {"-"}:
            continue
        pending = f"{pending} {line}".strip()
        if pending.endswith((" KEPT", " BROKEN")) or pending.startswith("Contracts:"):
            lines.append(" ".join(pending.split()))
            pending = ""
    return lines


def _report_in_the_docs() -> list[str]:
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    block = page.split("## The import contract, as lint-imports reports it", 1)[1]
    block = block.split("```\n", 2)[1]
    return [" ".join(line.split()) for line in block.splitlines() if line.strip()]


@pytest.fixture
def copy_of_the_package(tmp_path: Path) -> Path:
    """The repository's package and contract, copied, to plant imports in."""
    shutil.copytree(ROOT / "calfrehab", tmp_path / "calfrehab",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(CONTRACTS, tmp_path / ".importlinter")
    return tmp_path


def test_a_lazy_upward_import_breaks_the_layers(copy_of_the_package: Path) -> None:
    # The inference layer reaching up to the public API from inside a
    # function (the import a regex over module-level lines would miss).
    planted = copy_of_the_package / "calfrehab" / "engine" / "inference" / "planted.py"
    planted.write_text("def f() -> object:\n"
                       "    from calfrehab.engine import api\n"
                       "    return api\n", encoding="utf-8")
    result = lint_imports(copy_of_the_package, copy_of_the_package)
    assert result.returncode == 1
    assert "calfrehab.engine.inference.planted -> calfrehab.engine.api" in result.stdout
    assert "Engine layers" in result.stdout and "BROKEN" in result.stdout


def test_the_cli_reaching_beneath_the_api_breaks_the_contract(
        copy_of_the_package: Path) -> None:
    planted = copy_of_the_package / "calfrehab" / "cli" / "planted.py"
    planted.write_text("from calfrehab.engine.pipeline import prepare\n", encoding="utf-8")
    result = lint_imports(copy_of_the_package, copy_of_the_package)
    assert result.returncode == 1
    assert "calfrehab.cli.planted -> calfrehab.engine.pipeline" in result.stdout


def test_a_circle_between_siblings_breaks_the_contract(copy_of_the_package: Path) -> None:
    # Under TYPE_CHECKING too: a circle there still ties the two modules.
    batch = copy_of_the_package / "calfrehab" / "engine" / "batch"
    (batch / "rows.py").write_text(
        (batch / "rows.py").read_text(encoding="utf-8")
        + "\nfrom typing import TYPE_CHECKING\n"
          "if TYPE_CHECKING:\n    from calfrehab.engine.batch import outputs\n",
        encoding="utf-8")
    result = lint_imports(copy_of_the_package, copy_of_the_package)
    assert result.returncode == 1
    assert "No cycles are allowed in calfrehab.engine.batch" in result.stdout


def test_a_module_in_no_layer_breaks_the_contract(copy_of_the_package: Path) -> None:
    (copy_of_the_package / "calfrehab" / "engine" / "stray.py").write_text(
        "X = 1\n", encoding="utf-8")
    result = lint_imports(copy_of_the_package, copy_of_the_package)
    assert result.returncode == 1
    assert "calfrehab.engine.stray" in result.stdout
