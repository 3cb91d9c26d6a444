"""The shape of pydantic's private plugin loader, which cli/main.py stands
in for (a cold `next` saves about 19 ms of CPU by not importing it, and
with it importlib.metadata). pyproject.toml pins pydantic to the releases
whose loader has this shape (2.7 to 2.14); these tests fail loudly, in any
environment, if an installed pydantic's does not, so that the pin is
widened only after the stand-in is checked again."""

from __future__ import annotations

import ast
import inspect
import json
import os
from pathlib import Path

import pydantic
from helpers import python_output


def _pydantic_sources() -> list[Path]:
    return sorted(Path(pydantic.__file__).parent.rglob("*.py"))


def test_one_caller_imports_only_get_plugins_from_the_loader() -> None:
    # The stand-in gives the loader's one name to its one caller: any other
    # importer, or any other name, would meet a module without it.
    users: dict[str, list[str]] = {}
    for path in _pydantic_sources():
        if path.name == "_loader.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("_loader"):
                users.setdefault(path.name, []).extend(a.name for a in node.names)
            elif isinstance(node, ast.Import) and any(a.name.endswith("plugin._loader")
                                                      for a in node.names):
                users.setdefault(path.name, []).append("*")
    assert users == {"_schema_validator.py": ["get_plugins"]}


def test_get_plugins_takes_nothing_and_answers_none_when_all_are_off() -> None:
    # The real loader, in a process without the command line: with every
    # plugin off it answers "no plugins", as the stand-in's lambda does.
    code = (
        "import inspect, json\nfrom pydantic.plugin import _loader\n"
        "print(json.dumps([list(inspect.signature(_loader.get_plugins).parameters),"
        " list(_loader.get_plugins())]))\n"
    )
    for setting in ("__all__", "1", "true"):
        env = dict(os.environ, PYDANTIC_DISABLE_PLUGINS=setting)
        assert json.loads(python_output(code, env)) == [[], []], setting


def test_the_caller_asks_the_loader_at_validator_build_time() -> None:
    # _schema_validator imports get_plugins inside the function that builds
    # a validator (not at its own import): so the stand-in, put in place
    # when the command line loads, is what every model of calfrehab meets.
    from pydantic.plugin import _schema_validator

    source = inspect.getsource(_schema_validator.create_schema_validator)
    assert "from ._loader import get_plugins" in source
