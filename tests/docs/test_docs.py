"""The documentation cannot fall behind the program.

Every command has help that ends with an example and a section in the CLI
reference; every shipped rule names a source and has its section in the
clinical basis; the case-format page lists every field of the JSON Schema
the program prints; and no generated page is stale
(``python scripts/gendocs.py --check``).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import click
import pytest
from click.testing import CliRunner
from helpers import REPO

from calfrehab.cli.main import cli
from calfrehab.engine.api import case_json_schema, compile_rules
from calfrehab.engine.explanation.document import decision_json_schema

ROOT = REPO
DOCS = ROOT / "docs"


def _commands(
    command: click.Command, path: tuple[str, ...] = ("calfrehab",)
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        ctx = click.Context(command, info_name=path[-1])
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from _commands(sub, (*path, name))


COMMANDS = list(_commands(cli))
COMMAND_IDS = [" ".join(path) for path, _ in COMMANDS]


def _help(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(cli, [*path[1:], "--help"], prog_name="calfrehab",
                                terminal_width=80)
    assert result.exit_code == 0, result.output
    return result.output


def _schema_fields(schema: dict[str, Any]) -> Iterator[tuple[str, str]]:
    yield from ((schema.get("title", "root"), f) for f in schema.get("properties", {}))
    for name, body in schema.get("$defs", {}).items():
        yield from ((name, f) for f in body.get("properties", {}))


def test_the_walk_finds_the_known_commands() -> None:
    # A guard on the walker itself: if it found nothing, the tests below
    # would pass vacuously.
    for expected in ("calfrehab next", "calfrehab explain", "calfrehab validate",
                     "calfrehab schema", "calfrehab rules", "calfrehab rules check"):
        assert expected in COMMAND_IDS


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=COMMAND_IDS)
def test_every_command_has_help_with_an_example(
    path: tuple[str, ...], command: click.Command
) -> None:
    doc = (command.help or "").strip()
    assert doc, f"`{' '.join(path)}` has no help text"
    assert "Example:" in doc, f"`{' '.join(path)}`: its help has no `Example:` section"
    tail = doc.split("Example:", 1)[1].splitlines()
    assert all(not line.strip() or line.startswith(" ") or line == "\b" for line in tail), (
        f"`{' '.join(path)}`: the help must end with the example (indented command lines)")
    text = _help(path)
    assert "Example:" in text, f"`{' '.join(path)} --help` has no `Example:` section"
    example = text.split("Example:", 1)[1]
    # The example is a command line that runs this very command.
    assert " ".join(path) in example, (
        f"the example in `{' '.join(path)} --help` does not show `{' '.join(path)}`")


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=COMMAND_IDS)
def test_every_command_is_in_the_cli_reference(path: tuple[str, ...]) -> None:
    page = (DOCS / "cli-reference.md").read_text(encoding="utf-8")
    title = " ".join(path)
    assert re.search(rf"^## {re.escape(title)}$", page, re.MULTILINE), (
        f"docs/cli-reference.md has no section `## {title}`: run python scripts/gendocs.py")


def test_every_shipped_rule_has_a_source_and_a_section_in_the_clinical_basis() -> None:
    compiled = compile_rules(None)
    page = (DOCS / "clinical-basis.md").read_text(encoding="utf-8")
    assert compiled.base.rules
    for lr in compiled.base.rules:
        rule = lr.rule
        assert rule.sources, f"rule {rule.id} ({lr.file}:{lr.line}) names no source"
        for key in rule.sources:
            citation = compiled.base.sources[key].citation
            assert citation.strip(), f"source {key} of rule {rule.id} has no citation"
            assert citation in page, (
                f"docs/clinical-basis.md lacks the citation of {key} (rule {rule.id})")
        assert f"#### `{rule.id}`" in page, (
            f"rule {rule.id} is missing from docs/clinical-basis.md: run "
            "python scripts/gendocs.py")


def test_case_format_page_lists_every_schema_field() -> None:
    page = (DOCS / "case-format.md").read_text(encoding="utf-8")
    missing = [f"{obj}.{field}" for obj, field in _schema_fields(case_json_schema())
               if f"| `{field}` |" not in page]
    assert not missing, f"docs/case-format.md lacks fields: {', '.join(missing)}"


def test_decision_format_page_lists_every_schema_field() -> None:
    page = (DOCS / "decision-format.md").read_text(encoding="utf-8")
    missing = [f"{obj}.{field}" for obj, field in _schema_fields(decision_json_schema())
               if f"| `{field}` |" not in page]
    assert not missing, f"docs/decision-format.md lacks fields: {', '.join(missing)}"


def test_generated_pages_are_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gendocs.py"), "--check"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, (
        "generated docs are stale; run `python scripts/gendocs.py`\n" + result.stderr)


def _anchors(text: str) -> set[str]:
    """GitHub's heading anchors, and explicit <a id="..."> targets."""
    out = set(re.findall(r'<a id="([^"]+)"', text))
    in_code = False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and (m := re.match(r"#{1,6} (.*)", line)):
            heading = m.group(1).strip().lower()
            out.add("".join(ch for ch in heading if ch.isalnum() or ch in " -_").replace(" ", "-"))
    return out


def test_docs_links_resolve() -> None:
    pages = {page.name: page.read_text(encoding="utf-8") for page in DOCS.glob("*.md")}
    broken = []
    for name, text in sorted(pages.items()):
        for target, anchor in re.findall(r"\]\(([^)#\s]*)(?:#([^)\s]*))?\)", text):
            if "://" in target or (target and not target.endswith(".md")):
                continue
            page = target or name
            if page not in pages:
                broken.append(f"{name} -> {target} (no such page)")
            elif anchor and anchor not in _anchors(pages[page]):
                broken.append(f"{name} -> {page}#{anchor} (no such heading)")
    assert not broken, "broken links: " + ", ".join(broken)
