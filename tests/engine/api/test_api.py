"""The public API as a program sees it: every name a real, typed attribute.

``from calfrehab.engine import api`` then ``api.name(...)`` is the contract
the CLI, the service and a clinic's own program rely on. A type checker
must see a mistyped name or a wrong argument (the API once served names
through a PEP 562 ``__getattr__`` that returned ``Any``, and
``api.no_such_function(1, 2, 3)`` passed mypy); and importing the API must
not load the heavy libraries behind it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import calfrehab

ROOT = Path(calfrehab.__file__).resolve().parents[1]

SNIPPET = textwrap.dedent("""\
    from calfrehab.engine import api

    reasoner: api.Reasoner = api.prepare()
    decided: api.Decided = api.decide_path("case.json", reasoner)
    print(decided.ladder, decided.sources, api.for_terminal("x"))
    api.no_such_function(1, 2, 3)
    api.decide_path("case.json", 42)
""")


def test_mypy_sees_a_mistyped_api_call(tmp_path: Path) -> None:
    # One run, two planted mistakes and three good lines: exactly the two
    # mistakes are reported, so a config that fails everything (or nothing)
    # cannot pass.
    script = tmp_path / "client.py"
    script.write_text(SNIPPET, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
         "--cache-dir", str(tmp_path / "cache"), "--no-error-summary", str(script)],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert result.returncode == 1, result.stdout + result.stderr
    assert len(errors) == 2, result.stdout
    assert 'client.py:6: error: Module has no attribute "no_such_function"' in errors[0]
    assert "client.py:7: error: Argument 2" in errors[1]


def test_every_public_name_is_an_attribute_and_no_other_is() -> None:
    # The names load lazily at run time (api/_lazy.py), but only the listed
    # ones: a misspelt name is an AttributeError, as on a plain module, and
    # type checkers read the TYPE_CHECKING imports (the mypy test above).
    import pytest

    from calfrehab.engine import api

    missing = [name for name in api.__all__ if getattr(api, name, None) is None]
    assert not missing
    assert len(set(api.__all__)) == len(api.__all__)
    assert set(api.__all__) <= set(dir(api))
    with pytest.raises(AttributeError, match="no_such_function"):
        api.no_such_function  # type: ignore[attr-defined]  # noqa: B018


def test_each_audience_module_lists_what_it_adds() -> None:
    # The package's names are exactly the union of its audience modules'
    # __all__ and the errors module's: a name added to a module but not to
    # its __all__ is not public, and the package hides nothing else.
    from calfrehab.engine import api, errors
    from calfrehab.engine.api import batch, cds, deciding, entry, text, trail

    audiences = [deciding, trail, batch, cds, entry, text]
    listed = {name for module in audiences for name in module.__all__}
    assert not listed & set(errors.__all__)  # each name in one place
    assert set(api.__all__) == listed | set(errors.__all__)
    for module in [*audiences, errors]:
        for name in module.__all__:
            # The package serves each function guarded (api/_guard.py):
            # the function inside is the audience module's.
            served = getattr(api, name)
            assert getattr(served, "__wrapped__", served) is getattr(module, name), name


def test_every_error_is_in_the_one_module_and_exported() -> None:
    # Every CalfrehabError the engine defines lives in engine/errors.py, is
    # drawn in its docstring's tree, and is a name of the API.
    import importlib
    import pkgutil

    import calfrehab.engine
    from calfrehab.engine import api, errors

    for info in pkgutil.walk_packages(calfrehab.engine.__path__, "calfrehab.engine."):
        if not info.name.endswith("dask_backend"):  # needs dask; it defines no error
            importlib.import_module(info.name)

    def subclasses(cls: type) -> list[type]:
        out: list[type] = [cls]
        direct: list[type] = type.__subclasses__(cls)
        for sub in direct:
            out += subclasses(sub)
        return out

    found: set[type] = {c for c in subclasses(errors.CalfrehabError)
                        if c.__module__.startswith("calfrehab.engine")}
    elsewhere = sorted(f"{c.__module__}.{c.__name__}" for c in found
                       if c.__module__ != errors.__name__)
    assert not elsewhere
    tree = errors.__doc__ or ""
    for cls in found:
        drawn = cls is errors.CalfrehabError or f"── {cls.__name__} ." in tree
        assert drawn, f"{cls.__name__} is not drawn in the tree"
        assert getattr(api, cls.__name__) is cls


def test_importing_the_api_loads_no_heavy_library() -> None:
    # `calfrehab next` pays for what the API imports: the FHIR models, the
    # report's charts, the batch worker pool, Dask and the service load
    # inside the functions that use them.
    heavy = ["fhir.resources", "plotly", "jinja2", "dask", "distributed", "multiprocessing",
             "concurrent.futures", "starlette", "uvicorn", "calfrehab.server", "calfrehab.app",
             "calfrehab.engine.batch.local", "calfrehab.engine.report.render"]
    code = ("import json, sys\nfrom calfrehab.engine import api\n"
            f"print(json.dumps([m for m in {heavy!r} if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert json.loads(out) == []


def test_no_bare_value_error_leaves_case_reviewed_on() -> None:
    from datetime import date

    import pytest

    from calfrehab.engine import api

    for document in ({}, {"review_date": "2026-02-30"}):
        with pytest.raises(api.CaseValidationError) as caught:
            api.case_reviewed_on(document, date(2026, 12, 1))
        assert caught.value.errors[0].path == "review_date"


def test_every_api_function_pickles_as_itself() -> None:
    # A clinic's program hands API functions to a process pool, which
    # pickles them by module and name: the guarded function must be found
    # as itself there, as the plain functions were before the guard.
    import inspect
    import pickle

    from calfrehab.engine import api, errors

    functions = [name for name in api.__all__
                 if name not in errors.__all__ and inspect.isfunction(getattr(api, name))]
    assert "decide" in functions and "decide_and_record" in functions
    for name in functions:
        served = getattr(api, name)
        assert pickle.loads(pickle.dumps(served)) is served, name
    # And what comes back is still guarded: a wrong argument is named.
    with pytest.raises(api.ArgumentError, match="rules_dir"):
        pickle.loads(pickle.dumps(api.prepare))(42)
