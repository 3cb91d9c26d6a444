"""What a command loads: ``calfrehab next`` imports the code of ``next`` and
nothing else (issue 28 item 4, cold start).

The API package serves its names lazily (api/_lazy.py) and the command
line loads each command's module when it runs, so the trail, the batch
pool, FHIR, the report, the interviews, courses and case tables stay out of
a process that only decides. These tests count modules, never time: the
time is measured in benchmarks/run.py (part ``cold``).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
from helpers import next_then, python_output

import calfrehab

ROOT = Path(calfrehab.__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "runner-stuck-on-two-leg.json"

# Modules `next --no-record` must not import (each a prefix).
NOT_FOR_NEXT = (
    "sqlite3", "jinja2", "importlib.metadata", "email", "fhir.resources", "multiprocessing",
    "concurrent.futures", "platformdirs", "tomllib", "calfrehab.engine.clinicmodels",
    "calfrehab.engine.trail", "calfrehab.engine.audit", "calfrehab.engine.acceptance",
    "calfrehab.engine.batch", "calfrehab.engine.fhir", "calfrehab.engine.report",
    "calfrehab.engine.entry.interview", "calfrehab.engine.casefile.csvimport",
    "calfrehab.engine.casefile.editor", "calfrehab.engine.course",
    "calfrehab.engine.ruletest", "calfrehab.engine.api.trail", "calfrehab.engine.api.batch",
    "calfrehab.engine.api.cds", "calfrehab.engine.api.entry",
    "calfrehab.cli.audit_cmd", "calfrehab.cli.batch_cmd", "calfrehab.cli.rules_cmd",
    "calfrehab.cli.fhir_cmd", "calfrehab.cli.entry_cmds", "calfrehab.server", "calfrehab.app",
)


def _modules_after(*args: str) -> tuple[list[str], str]:
    """The modules a fresh interpreter holds after running the CLI with
    ``args`` (and what it printed)."""
    code = (
        "import json, sys\n"
        "from calfrehab.cli.main import cli\n"
        "try:\n"
        f"    cli({list(args)!r}, prog_name='calfrehab')\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "print('MODULES' + json.dumps(sorted(sys.modules)))\n"
    )
    stdout = python_output(code)
    out, _, modules = stdout.rpartition("MODULES")
    return json.loads(modules), out


def test_next_without_recording_loads_only_what_deciding_needs() -> None:
    modules, out = _modules_after("next", str(EXAMPLE), "--no-record")
    assert "PROGRESS" in out  # it did decide
    loaded = [m for m in modules if m.startswith(NOT_FOR_NEXT)]
    assert loaded == []
    # It did load the engine: the check above is not vacuous.
    assert "calfrehab.engine.pipeline" in modules
    assert "calfrehab.cli.case_cmds" in modules


def test_next_with_its_rules_cached_loads_no_writer() -> None:
    # A run that finds the compiled rules in the cache writes nothing: it
    # loads neither tempfile nor what tempfile loads (shutil, bz2, lzma),
    # which only writing needs (engine/safeio.py, knowledge/cache.py). The
    # first run may fill this session's cache; the second finds it.
    for _ in range(2):
        modules, out = _modules_after("next", str(EXAMPLE), "--no-record")
    assert "PROGRESS" in out
    assert [m for m in modules if m.startswith(("tempfile", "shutil", "bz2", "lzma"))] == []
    assert "calfrehab.engine.knowledge.cache" in modules


def test_version_loads_no_engine_module() -> None:
    from calfrehab.engine import api

    modules, out = _modules_after("--version")
    assert out.strip() == f"calfrehab, version {api.ENGINE_VERSION}"
    # (pydantic.plugin._loader is cli/main.py's stand-in, no pydantic code.)
    assert [m for m in modules if m.startswith(("calfrehab.engine", "pydantic"))
            and m != "pydantic.plugin._loader"] == []


def test_importing_the_api_loads_no_audience_module() -> None:
    code = ("import json, sys\nfrom calfrehab.engine import api\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('calfrehab'))))")
    out = python_output(code)
    # The errors (and the text escaping their messages use) are there at
    # once, so `except api.CalfrehabError` never loads anything.
    assert json.loads(out) == ["calfrehab", "calfrehab.engine", "calfrehab.engine.api",
                               "calfrehab.engine.api._guard", "calfrehab.engine.api._lazy",
                               "calfrehab.engine.errors", "calfrehab.engine.textsafe"]


def test_help_lists_every_command_from_the_lazy_table() -> None:
    from click.testing import CliRunner

    from calfrehab.cli.main import cli

    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    listed = {line.split()[0] for line in result.output.split("Commands:")[1].splitlines()
              if line.strip()}
    assert listed == set(cli.lazy)
    assert {"next", "explain", "validate", "schema", "rules", "audit", "batch"} <= listed


def test_a_case_lock_through_the_api_loads_no_engine(tmp_path: Path) -> None:
    # The guard checks case_lock's arguments before each call (a context
    # manager's body runs past the wrapper); that check must not import the
    # engine, the batch pool or the trail to resolve its annotations. And
    # it still checks: a wrong argument is named.
    case = tmp_path / "c.json"
    case.write_text("{}")
    code = ("import json, sys\nfrom calfrehab.engine import api\n"
            f"with api.case_lock({str(case)!r}):\n    pass\n"
            "try:\n    api.case_lock(42)\nexcept api.ArgumentError as exc:\n"
            "    print('WRONG', exc)\n"
            "print('MODULES' + json.dumps(sorted(sys.modules)))\n")
    stdout = python_output(code)
    out, _, listed = stdout.rpartition("MODULES")
    assert "WRONG case_lock(): argument path is 42 (int)" in out
    modules = json.loads(listed)
    assert "calfrehab.engine.casefile.editor" in modules  # it did lock
    assert [m for m in modules if m.startswith(
        ("sqlite3", "multiprocessing", "calfrehab.engine.batch", "calfrehab.engine.trail",
         "calfrehab.engine.inference", "durable_rules_engine"))] == []


def test_the_command_line_freezes_the_collector_at_exit_after_every_other_handler() -> None:
    # Registered before the command line is imported, this handler runs
    # after every handler the command line registers (atexit is last in,
    # first out): by then the objects are frozen, so the collection CPython
    # runs at exit skips them (cli/main.py says why that is safe).
    code = (
        "import atexit, gc, sys\n"
        "atexit.register(lambda: print('FROZEN', gc.get_freeze_count() > 0))\n"
        "from calfrehab.cli.main import cli\n"
        f"cli(['next', {str(EXAMPLE)!r}, '--no-record'], prog_name='calfrehab')\n"
    )
    stdout = python_output(code)
    assert "PROGRESS" in stdout  # the output before exit is all there
    assert stdout.rstrip().endswith("FROZEN True")


@pytest.mark.parametrize(("setting", "stand_in"), [
    (None, True), ("__all__", True), ("1", True), ("some_plugin", False)])
def test_pydantic_plugins_are_off_without_importing_their_loader(
    setting: str | None, stand_in: bool,
) -> None:
    # cli/main.py stands in for pydantic's plugin loader only when every
    # plugin is off (its own default, or the user's "all off"); a user's
    # own list of plugins to leave out gets pydantic's loader, which reads
    # the entry points. Either way a model builds and validates.
    code = (
        "import json, sys\nimport calfrehab.cli.main\nimport pydantic\n"
        "class M(pydantic.BaseModel):\n    x: int\n"
        "from pydantic.plugin import _loader\n"
        "print(json.dumps([M(x=1).x, list(_loader.get_plugins()),"
        " 'importlib.metadata' in sys.modules]))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    if setting is not None:
        env["PYDANTIC_DISABLE_PLUGINS"] = setting
    out = python_output(code, env)
    assert json.loads(out) == [1, [], not stand_in]


def test_next_builds_no_validator_of_a_model_it_does_not_validate() -> None:
    # Building a pydantic model's validator is most of what defining it
    # costs; `next` validates the case and builds its decision document,
    # never a clinic configuration when there is no calfrehab.toml (the
    # defaults are constructed) nor the rule files (the rule base comes
    # from the compiled-rules cache or, on a miss, validates them).
    code = next_then(
        EXAMPLE,
        "from calfrehab.engine import clinic\n"
        "from calfrehab.engine.knowledge import rulelang\n"
        "from calfrehab.engine.casefile import model\n"
        "print('BUILT' + json.dumps({m.__name__: sorted(\n"
        "    n for n, c in vars(m).items() if isinstance(c, type) and c.__module__ == m.__name__\n"
        "    and getattr(c, '__pydantic_complete__', False))\n"
        "    for m in (clinic, rulelang, model)}))\n"
        "print('HIT' + json.dumps(sorted(m for m in ('yaml', 'difflib',\n"
        "    'calfrehab.engine.knowledge.durable_limits') if m in sys.modules)))\n",
        # Run where there is no calfrehab.toml.
        before="import json, os, sys, tempfile\nos.chdir(tempfile.mkdtemp())\n",
    )
    env = {k: v for k, v in os.environ.items() if k != "CALFREHAB_CONFIG"}
    env["XDG_CONFIG_HOME"] = tempfile.mkdtemp()  # no user configuration either
    env["XDG_CACHE_HOME"] = tempfile.mkdtemp()  # a cache of its own: the first run fills it
    for _ in range(2):
        stdout = python_output(code, env)
    built = json.loads(stdout.rpartition("BUILT")[2].partition("HIT")[0])
    # From the cache (the second run): no YAML read, nothing compiled, and
    # a valid case needs no spelling suggestions.
    assert json.loads(stdout.rpartition("HIT")[2]) == []
    assert built["calfrehab.engine.clinic"] == []
    assert built["calfrehab.engine.knowledge.rulelang"] == []
    # The case's own validator holds its parts' schemas: the parts (Patient,
    # Session, ...) build theirs only when used on their own.
    assert built["calfrehab.engine.casefile.model"] == ["Case"]  # and not vacuous


def test_next_with_no_configured_trail_loads_no_clinic_model() -> None:
    # The tests' own trail (conftest's CALFREHAB_AUDIT) hides the user's
    # path: with no --audit and no CALFREHAB_AUDIT, `next` asks the
    # configuration for its trail (api.configured_trail), and with no
    # calfrehab.toml anywhere that needs none of the configuration's models.
    # It loaded them (clinicmodels, about 2.5 ms) because api/entry.py
    # re-exported ClinicConfig and LoadedConfig by a plain import.
    code = next_then(
        EXAMPLE,
        "loaded = sorted(m for m in ('calfrehab.engine.clinicmodels',\n"
        "    'calfrehab.engine.api.entry') if m in sys.modules)\n"
        "from calfrehab.engine import api\n"
        "print('LOADED' + json.dumps([loaded, api.ClinicConfig.__name__,\n"
        "    api.LoadedConfig.__name__]))\n",
        # Run where there is no calfrehab.toml.
        before="import json, os, sys, tempfile\nos.chdir(tempfile.mkdtemp())\n",
    )
    env = {k: v for k, v in os.environ.items()
           if k not in ("CALFREHAB_CONFIG", "CALFREHAB_AUDIT")}
    env["XDG_CONFIG_HOME"] = tempfile.mkdtemp()  # no user configuration either
    stdout = python_output(code, env)
    assert "PROGRESS" in stdout  # it did decide
    # api.entry did serve configured_trail (the check is not vacuous), and
    # the models are still there for whoever names them.
    assert json.loads(stdout.rpartition("LOADED")[2]) == [
        ["calfrehab.engine.api.entry"], "ClinicConfig", "LoadedConfig"]


def test_a_command_module_is_imported_with_the_collector_paused_then_frozen() -> None:
    # cli/main.py says why: the engine's import makes tens of thousands of
    # objects that live as long as the process, which the collector would
    # walk some 80 times for nothing. After the import the collector runs
    # again for whatever a command makes.
    code = (
        "import gc, json\n"
        "from calfrehab.cli import main\n"
        "runs = []\n"
        "gc.callbacks.append(lambda phase, info: phase == 'start' and runs.append(1))\n"
        "before = gc.get_freeze_count()\n"
        "main._load('calfrehab.cli.case_cmds')\n"
        "during = len(runs)\n"
        "frozen = gc.get_freeze_count() - before\n"
        "garbage = []\n"
        "for _ in range(50_000):\n"
        "    cycle = []; cycle.append(cycle); garbage.append(len(runs))\n"
        "print(json.dumps([during, frozen > 10_000, gc.isenabled(), len(runs) > during,"
        " main._load('calfrehab.cli.case_cmds') is main._load('calfrehab.cli.case_cmds')]))\n"
    )
    out = python_output(code)
    assert json.loads(out) == [0, True, True, True, True]


def test_the_command_line_itself_loads_with_the_collector_paused() -> None:
    # As for a command's module: click and cli/main.py load without a
    # collection, and leave the collector running, their objects frozen.
    # (A collection may fall due while the packages above them load.)
    code = (
        "import gc, json, sys\n"
        "runs = []\n"
        "gc.callbacks.append(lambda phase, info: phase == 'start' and 'click' in sys.modules"
        " and runs.append(1))\n"
        "import calfrehab.cli.main\n"
        "during = len(runs)\n"
        "print(json.dumps([during, gc.isenabled(), gc.get_freeze_count() > 1000]))\n"
    )
    out = python_output(code)
    assert json.loads(out) == [0, True, True]


def test_a_command_line_that_fails_to_load_leaves_the_collector_on() -> None:
    # cli/main.py pauses the collector while click and its own imports
    # load; an import that fails there must not leave a process that goes
    # on (a test runner, an app that catches the ImportError) with its
    # garbage never collected.
    code = (
        "import gc, json, sys\n"
        "sys.modules['calfrehab.cli.helptext'] = None  # its import now fails\n"
        "try:\n"
        "    import calfrehab.cli.main\n"
        "except ImportError:\n"
        "    pass\n"
        "print(json.dumps(['calfrehab.cli.main' in sys.modules, gc.isenabled()]))\n"
    )
    out = python_output(code)
    assert json.loads(out) == [False, True]


def test_next_parses_no_builtin_signature() -> None:
    # pydantic asks every default factory it calls or builds a validator
    # for whether it takes the validated data; for a builtin (`list`) that
    # means parsing its text signature with tokenize, and compiling
    # tokenize's regular expressions (about 3 ms of a cold `next`). The case
    # file's lists and the rule language's AppliesTo (constructed at import)
    # default through Python functions instead. The cache is tokenize's own
    # (an lru_cache of its compiled patterns): empty means never tokenized.
    code = next_then(
        EXAMPLE,
        "import tokenize\n"
        "print('COMPILED' + json.dumps(tokenize._compile.cache_info().currsize))\n",
        before="import json, sys\n",
    )
    env = dict(os.environ)
    # A cache of its own, filled by the first run: the second decides as a
    # user's usual `next` does (a miss validates the rule files, whose
    # models have builtin factories: only the YAML's reading pays for that).
    env["XDG_CACHE_HOME"] = tempfile.mkdtemp()
    for _ in range(2):
        stdout = python_output(code, env)
    assert "PROGRESS" in stdout  # it did decide
    assert json.loads(stdout.rpartition("COMPILED")[2]) == 0
    # And the defaults are still fresh empty lists, one per model.
    from calfrehab.engine.casefile.model import Case
    from calfrehab.engine.knowledge.rulelang import AppliesTo

    one, two = AppliesTo(), AppliesTo()
    assert one.tracks == [] and one.tracks is not two.tracks
    fields = Case.model_fields
    assert [fields[n].get_default(call_default_factory=True)
            for n in ("red_flags", "sessions", "assessments")] == [[], [], []]


def test_a_part_of_a_case_still_validates_and_dumps_on_its_own() -> None:
    # Deferred, not gone: a part used by itself builds its validator and
    # serializer then, and behaves as the case's own copy does.
    from calfrehab.engine.casefile.model import Case, Prescription, Session

    rx = Prescription.model_validate({"exercise": "two_leg_heel_raise", "sets": 3, "reps": 15})
    assert rx.model_dump() == {"exercise": "two_leg_heel_raise", "load_kg": 0, "sets": 3,
                               "reps": 15}
    case = Case.model_validate(json.loads(EXAMPLE.read_text(encoding="utf-8")))
    first = case.sessions[0]
    assert Session.model_validate(first.model_dump()) == first
    alone = Session.model_json_schema()
    assert alone.pop("$defs") == {"PerformedExercise":
                                  Case.model_json_schema()["$defs"]["PerformedExercise"]}
    assert alone == Case.model_json_schema()["$defs"]["Session"]


def test_the_command_line_freezes_what_preparing_made_once_per_reasoner() -> None:
    # cli/options.py's prepared() says why: the rule base preparing makes
    # lives as long as the process, and the first collection after it
    # walked it for nothing. Once per reasoner, so a process running many
    # commands (the tests) does not freeze its garbage at every command;
    # and with the collector off (a caller's choice) it freezes nothing.
    code = (
        "import gc, json\n"
        "from calfrehab.cli.options import prepared\n"
        "start = gc.get_freeze_count()\n"
        "first = prepared(None)\n"
        "frozen = gc.get_freeze_count()\n"
        "garbage = [[] for _ in range(1000)]\n"
        "again = prepared(None)\n"
        "print(json.dumps([first is again, frozen - start > 1000,\n"
        "                  gc.get_freeze_count() == frozen]))\n"
    )
    assert json.loads(python_output(code)) == [True, True, True]
    off = ("import gc, json\ngc.disable()\nfrom calfrehab.cli.options import prepared\n"
           "start = gc.get_freeze_count()\nprepared(None)\n"
           "print(json.dumps(gc.get_freeze_count() - start))\n")
    assert json.loads(python_output(off)) == 0


def test_next_of_a_case_file_defines_no_other_kind_of_source() -> None:
    # api/sources.py: decide_and_record's other sources (a Bundle, either
    # kind of file, a parsed document) are defined when first named.
    modules, out = _modules_after("next", str(EXAMPLE), "--no-record")
    assert "PROGRESS" in out
    assert "calfrehab.engine.api.deciding" in modules
    assert "calfrehab.engine.api.sources" not in modules


def test_the_other_sources_are_served_under_their_names_and_still_decide(
    tmp_path: Path,
) -> None:
    from calfrehab.engine import api
    from calfrehab.engine.api import deciding, sources

    assert api.FromDocument is deciding.FromDocument is sources.FromDocument
    assert api.FromBundleFile is sources.FromBundleFile
    assert api.FromEitherFile is sources.FromEitherFile
    reasoner = api.prepare(None)
    document = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    by_document = api.decide_and_record(api.FromDocument(document, "x"), reasoner,
                                        audit_path=None, clinician=None, record=False)
    by_either = api.decide_and_record(api.FromEitherFile(str(EXAMPLE)), reasoner,
                                      audit_path=None, clinician=None, record=False)
    by_file = api.decide_and_record(api.FromCaseFile(str(EXAMPLE)), reasoner,
                                    audit_path=None, clinician=None, record=False)
    assert (by_document.decision.tracks == by_either.decision.tracks
            == by_file.decision.tracks)
    with pytest.raises(api.ArgumentError, match="FromDocument, or a Decided"):
        api.decide_and_record(str(EXAMPLE), reasoner,  # type: ignore[arg-type]
                              audit_path=None, clinician=None, record=False)
