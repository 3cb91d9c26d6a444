"""Only the one error tree leaves the API (issue 25 item 5).

Every function in ``api.__all__`` is called with good arguments but one,
and that one bad in each way its kind can be: a path that is missing, a
directory, a file of non-UTF-8 bytes, invalid JSON, a file that is not a
trail, another program's SQLite database, a rules directory that is not
one or whose YAML does not parse, or a value of the wrong type;
any other argument gets the wrong types. Whatever escapes must be a
:class:`CalfrehabError` (a domain error, or :class:`ArgumentError` naming
the function and the parameter). A function the table below does not know
fails the test, so a new API function is walked too.
"""

from __future__ import annotations

import inspect
import json
import shutil
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from pathlib import Path
from typing import Any, Literal

import pytest

import calfrehab
from calfrehab.engine import api, errors

ROOT = Path(calfrehab.__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "runner-stuck-on-two-leg.json"
CSV = ROOT / "examples" / "import" / "clinic-export-template.csv"

# Functions whose good call would be slow (a whole batch, every case table,
# a child process): only their wrong-typed arguments are fed, which fail
# before any work starts.
TYPES_ONLY = {"run_batch", "run_tables", "check_rules"}

WRONG_TYPES: dict[str, object] = {"int": 42, "none": None, "str": "x", "dict": {"a": 1},
                                  "list": [1], "bad date": "2026-13-01"}


def _refuse(question: object) -> object:
    raise api.AnswerError("no answer in this test")


def _validation_error() -> Exception:
    """A configuration's problems as pydantic reports them."""
    import pydantic

    try:
        api.ClinicConfig.model_validate({"clinic": {"bogus": 1}})
    except pydantic.ValidationError as exc:
        return exc
    raise AssertionError("an unknown key was taken")


class Env:
    """Good values for every parameter, and the bad files."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.case_path = tmp / "case.json"
        shutil.copy(EXAMPLE, self.case_path)
        self.doc: dict[str, Any] = json.loads(EXAMPLE.read_text(encoding="utf-8"))
        self.reasoner = api.prepare()
        self.decided = api.decide_path(self.case_path, self.reasoner)
        self.trail_path = tmp / "trail.db"
        api.record([self.decided], self.trail_path, "jm")
        self.key = tmp / "clinic.key"
        api.audit_keygen(self.key)
        self.checkpoint = tmp / "checkpoint.json"
        api.audit_checkpoint(self.trail_path, self.key, out=self.checkpoint)
        self.proof = tmp / "proof.json"
        with api.open_trail(self.trail_path) as trail:
            proof = api.audit_prove(trail, self.decided.decision.decision_id, self.checkpoint)
        self.proof.write_text(json.dumps(proof), encoding="utf-8")
        self.bundle = api.case_to_fhir(self.decided.case)
        self.bundle_path = tmp / "bundle.json"
        self.bundle_path.write_text(api.fhir_json(self.bundle), encoding="utf-8")
        self.hook_data = api.cds_example_request(self.decided.case, "p1")
        self.hook = api.parse_cds_hook(self.hook_data)
        decision = self.decided.decision.model_dump(mode="json")
        _cards, issued = api.cds_cards(decision, source_url="https://x.example", clinician="jm")
        self.card = issued[0]
        self.feedback_data = {"feedback": [{
            "card": self.card.card, "outcome": "accepted",
            "outcomeTimestamp": "2026-11-20T10:00:00Z"}]}
        self.feedback = api.parse_cds_feedback(self.feedback_data).feedback[0]
        self.ladder = api.load_ladder()
        self.merged = api.merge_reasons(self.decided.decision.reasons, {}, list(api.TRACKS))
        # The bad inputs of a path.
        missing = tmp / "missing.json"
        directory = tmp / "a-directory"
        directory.mkdir()
        latin1 = tmp / "latin1.json"
        latin1.write_bytes(b'{"case_id": "\xe9t\xe9"}')
        not_json = tmp / "not.json"
        not_json.write_text("{not json", encoding="utf-8")
        not_trail = tmp / "not-a-trail.db"
        not_trail.write_text("SQLite format 3? no.", encoding="utf-8")
        not_rules = tmp / "not-rules"
        not_rules.mkdir()
        (not_rules / "rules.yaml").write_text(": : :\n", encoding="utf-8")
        other_db = tmp / "other-app.db"
        with sqlite3.connect(other_db) as conn:  # SQLite, but not a trail
            conn.execute("CREATE TABLE entries (x)")
        conn.close()
        bad_yaml = tmp / "bad-yaml-rules"
        shutil.copytree(api.compile_rules().base.directory, bad_yaml)
        (bad_yaml / "rulebase.yaml").write_text("rules: [unclosed\n", encoding="utf-8")
        self.bad_paths: dict[str, object] = {
            "missing": missing, "directory": directory, "non-UTF-8": latin1,
            "invalid JSON": not_json, "not a trail": not_trail,
            "another program's SQLite": other_db, "not rules": not_rules,
            "rules with bad YAML": bad_yaml, "int": 42, "list": [1]}

    def copy(self, path: Path, name: str) -> Path:
        """A fresh copy, for a call that writes."""
        out = self.tmp / "copies" / name
        out.parent.mkdir(exist_ok=True)
        if out.exists():
            out.unlink()
        shutil.copy(path, out)
        return out

    def fresh(self, name: str) -> Path:
        """A path nothing is at yet, for a call that creates a file."""
        self.made = getattr(self, "made", 0) + 1
        return self.tmp / f"{self.made}-{name}"

    def good(self, function: str) -> dict[str, object]:
        """Good arguments for ``function`` (its required ones, and the
        optional ones worth attacking)."""
        e = self
        d = self.decided
        ref = d.decision.decision_id
        exercise = next(td.current.exercise for td in d.decision.tracks.values()
                        if td.current is not None)
        table: dict[str, Callable[[], dict[str, object]]] = {
            "accept": lambda: {"case_path": e.copy(e.case_path, "accept.json"),
                               "audit": e.copy(e.trail_path, "accept.db"), "decision": ref},
            "add_assessment": lambda: {"path": e.copy(e.case_path, "assess.json"),
                                       "ask": _refuse, "rules_dir": None},
            "add_audit_override": lambda: {"trail": api.open_trail(e.trail_path), "ref": ref,
                                           "clinician": "jm", "reason": "r"},
            "audit_check_proof": lambda: {"proof": e.proof, "checkpoint": e.checkpoint},
            "audit_checkpoint": lambda: {"path": e.trail_path, "key": e.key,
                                         "out": e.tmp / "cp2.json", "force": True},
            "audit_key_check": lambda: {"key": e.key},
            "audit_keygen": lambda: {"path": e.fresh("new.key")},
            "audit_prove": lambda: {"trail": api.open_trail(e.trail_path), "ref": ref,
                                    "checkpoint": e.checkpoint},
            "candidate_paths": lambda: {"near": e.case_path},
            "case_from_fhir": lambda: {"data": e.bundle},
            "case_json": lambda: {"document": e.doc},
            "case_json_schema": dict,
            "case_lock": lambda: {"path": e.copy(e.case_path, "lock.json")},
            "case_reviewed_on": lambda: {"document": e.doc, "review": date(2026, 12, 1)},
            "case_state": lambda: {"audit": e.trail_path, "case_id": d.case.case_id},
            "case_to_fhir": lambda: {"case": d.case},
            "entered_since": lambda: {"then": e.doc, "now": e.doc},
            "in_force": lambda: {"acted": "d1", "acted_case": e.doc, "latest": "d2",
                                 "current": e.doc},
            "cds_cards": lambda: {"decision": d.decision.model_dump(mode="json"),
                                  "source_url": "https://x.example", "clinician": "jm"},
            "cds_discovery": dict,
            "cds_example_request": lambda: {"case": d.case, "patient_id": "p1"},
            "cds_feedback_reason": lambda: {"item": e.feedback, "card": e.card},
            "cds_feedback_schema": dict,
            "cds_hook_schema": dict,
            "cds_missing_prefetch": lambda: {"request": e.hook},
            "cds_prefetch_bundle": lambda: {"request": e.hook},
            "chart_case": lambda: {"bundle": e.bundle, "case_id": d.case.case_id,
                                   "review_date": d.case.review_date, "stored": None},
            "check_output": lambda: {"path": e.tmp / "out.txt", "inputs": (e.case_path,),
                                     "trail": e.trail_path},
            "check_replace": lambda: {"path": e.tmp / "out.txt", "force": False},
            "check_rules": lambda: {"rules_dir": None},
            "clinic_today": lambda: {"near": e.case_path},
            "clinician_text": lambda: {"text": "x", "ladder": e.ladder},
            "compile_rules": lambda: {"rules_dir": None},
            "condition_line": lambda: {"c": {"fact": "x", "op": "<", "value": 1,
                                              "threshold": 2}, "dates": {}},
            "config_problems": lambda: {"exc": _validation_error(), "model": api.ClinicConfig},
            "configured_trail": lambda: {"near": e.case_path},
            "criterion_text": lambda: {"fact": "x", "value": 1, "op": "<", "threshold": 2},
            "csv_cell": lambda: {"value": "=1"},
            "decide": lambda: {"case": d.case, "document": e.doc, "reasoner": e.reasoner},
            "decide_and_record": lambda: {"source": api.FromCaseFile(e.case_path),
                                          "reasoner": e.reasoner,
                                          "audit_path": e.copy(e.trail_path, "dar.db"),
                                          "clinician": "jm"},
            "decide_any_path": lambda: {"path": e.case_path, "reasoner": e.reasoner},
            "decide_case_file": lambda: {"path": e.case_path, "reasoner": e.reasoner},
            "decide_document": lambda: {"document": e.doc, "reasoner": e.reasoner},
            "decide_fhir_path": lambda: {"path": e.bundle_path, "reasoner": e.reasoner},
            "decide_path": lambda: {"path": e.case_path, "reasoner": e.reasoner},
            "decision_json": lambda: {"decided": d},
            "decision_json_schema": dict,
            "decision_to_fhir": lambda: {"decided": d, "recorded": None},
            "decision_word": lambda: {"decision": "progress"},
            "dose_text": lambda: {"sets": 3, "reps": 15, "unit": "kg"},
            "exercise_name": lambda: {"ladder": e.ladder, "exercise": exercise},
            "explanation": lambda: {"decided": d},
            "explanation_json": lambda: {"decided": d},
            "export_audit": lambda: {"trail": api.open_trail(e.trail_path), "fmt": "jsonl",
                                     "out": e.tmp / "export.jsonl"},
            "fhir_json": lambda: {"bundle": e.bundle},
            "for_terminal": lambda: {"text": "x"},
            "for_terminal_lines": lambda: {"text": "x"},
            "format_for": lambda: {"out": e.tmp / "o.jsonl", "fmt": None},
            "format_value": lambda: {"value": 1},
            "future_review": lambda: {"case": d.case, "near": e.case_path},
            "import_csv": lambda: {"path": CSV, "into": e.tmp / "imported", "dry_run": True,
                                   "rules_dir": None},
            "list_audit": lambda: {"trail": api.open_trail(e.trail_path),
                                   "case_id": d.case.case_id},
            "load_config": lambda: {"near": e.case_path},
            "load_ladder": lambda: {"directory": None},
            "log_morning": lambda: {"path": e.copy(e.case_path, "morning.json"),
                                    "ask": _refuse},
            "log_session": lambda: {"path": e.copy(e.case_path, "log.json"), "ask": _refuse,
                                    "rules_dir": None},
            "merge_case": lambda: {"stored": e.doc, "chart": e.doc, "source": "x"},
            "merge_reasons": lambda: {"reasons": d.decision.reasons, "exercise_names": {},
                                      "tracks_in_play": list(api.TRACKS)},
            "migrate_audit": lambda: {"path": e.copy(e.trail_path, "migrate.db")},
            "milestone_text": lambda: {"key": "x", "ladder": e.ladder},
            "missing_criteria": lambda: {"failed": []},
            "new_case": lambda: {"path": e.tmp / "new.json", "ask": _refuse,
                                 "rules_dir": None},
            "open_trail": lambda: {"path": e.trail_path},
            "outcome_problem": lambda: {"outcome": {}},
            "override_decision": lambda: {"path": e.copy(e.trail_path, "override.db"),
                                          "ref": ref, "clinician": "jm", "reason": "r"},
            "parse_cds_feedback": lambda: {"data": e.feedback_data},
            "parse_cds_hook": lambda: {"data": e.hook_data},
            "parse_json": lambda: {"text": "{}", "source": "x"},
            "plausible_ranges": lambda: {"rules_dir": None},
            "prefetch_foreign": lambda: {"prefetch": {}, "keys": ("patient",),
                                         "patient_id": "p1"},
            "prefetch_gaps": lambda: {"prefetch": {}, "keys": ("patient",)},
            "prefetch_resources": lambda: {"prefetch": {}, "keys": ("patient",)},
            "prepare": lambda: {"rules_dir": None},
            "read_case_or_bundle": lambda: {"path": e.case_path},
            "read_fhir_case": lambda: {"path": e.bundle_path},
            "reason_names": lambda: {"decision": d.decision, "ladder": e.ladder},
            "reason_unit": lambda: {"reason": e.merged[0], "decision": d.decision,
                                    "ladder": e.ladder},
            "record": lambda: {"decided": [api.decide_path(e.case_path, e.reasoner)],
                               "audit_path": e.copy(e.trail_path, "rec.db"), "clinician": "jm"},
            "replay_decision": lambda: {"trail": api.open_trail(e.trail_path), "ref": ref,
                                        "rules_dir": None},
            "report_charts": lambda: {"case": e.case_path, "rules_dir": None},
            "resolve_prefetch_template": lambda: {"template": "Patient/{{context.patientId}}",
                                                  "context": {"patientId": "p1"}},
            "restating_rules": lambda: {"doc": d.decision, "compiled": d.evaluation.compiled},
            "run_batch": lambda: {"options": api.BatchOptions(inputs=[e.case_path],
                                                              out=e.tmp / "b.jsonl",
                                                              record=False, jobs=1)},
            "run_tables": lambda: {"rules_dir": None},
            "searchset_gap": lambda: {"key": "patient", "bundle": {}},
            "short_citation": lambda: {"citation": "x"},
            "show_decision": lambda: {"trail": api.open_trail(e.trail_path), "ref": ref},
            "simulate": lambda: {"path": e.case_path, "weeks": 1, "rules_dir": None},
            "simulate_document": lambda: {"document": e.doc, "reasoner": e.reasoner,
                                          "weeks": 1},
            "start_batch_workers": lambda: {"jobs": 1},  # one job: nothing to start
            "track_title": lambda: {"track": "straight_knee"},
            "trail_location": lambda: {"audit_path": e.trail_path},
            "usable_trail_location": lambda: {"audit_path": e.trail_path},
            "unit_of": lambda: {"ladder": e.ladder, "exercise": exercise},
            "unusual_values": lambda: {"case": d.case, "rules_dir": None},
            "update_case": lambda: {"path": e.copy(e.case_path, "update.json"),
                                    "edit": lambda doc: None},
            "utc_today": dict,
            "validate_document": lambda: {"doc": e.doc},
            "validate_path": lambda: {"path": e.case_path},
            "verify_audit": lambda: {"path": e.trail_path, "checkpoint": None},
            "verify_trail": lambda: {"trail": api.open_trail(e.trail_path)},
            "write_case_document": lambda: {"path": e.tmp / "written.json", "document": e.doc,
                                            "overwrite": True},
            "write_handout": lambda: {"case": e.case_path, "out": e.tmp / "handout.html",
                                      "rules_dir": None, "next_review": None},
            "write_output": lambda: {"path": e.tmp / "o.txt", "text": "x",
                                     "inputs": (e.case_path,), "trail": None},
            "write_report": lambda: {"case": e.case_path, "out": e.tmp / "report.html",
                                     "rules_dir": None, "audit": None},
        }
        if function not in table:
            raise LookupError(function)
        return table[function]()


def _functions() -> list[str]:
    return [name for name in api.__all__
            if name not in errors.__all__ and inspect.isfunction(inspect.unwrap(
                getattr(api, name)))]


def _is_path(function: str, parameter: inspect.Parameter) -> bool:
    text = str(parameter.annotation)
    return "Path" in text or parameter.name in ("rules_dir", "directory")


def _cases(env: Env, function: str) -> Iterator[tuple[str, dict[str, object]]]:
    fn = getattr(api, function)
    good = env.good(function)
    for parameter in inspect.signature(fn).parameters.values():
        if parameter.name not in good and parameter.default is inspect.Parameter.empty:
            continue
        bads = (env.bad_paths if _is_path(function, parameter) and function not in TYPES_ONLY
                else WRONG_TYPES)
        for label, bad in bads.items():
            yield f"{parameter.name}={label}", {**env.good(function), parameter.name: bad}
    if function == "decide_and_record":  # its source holds the path, or the document
        for kind in (api.FromCaseFile, api.FromBundleFile, api.FromEitherFile):
            for label, bad in env.bad_paths.items():
                yield (f"source={kind.__name__}({label})",
                       {**env.good(function), "source": kind(bad)})  # type: ignore[arg-type]
        for label, bad in WRONG_TYPES.items():
            yield f"source=FromDocument({label})", {**env.good(function),
                                                    "source": api.FromDocument(bad)}


def _escaped(fn: Callable[..., object], kwargs: dict[str, object]) -> BaseException | None:
    try:
        result = fn(**kwargs)
        if hasattr(result, "__enter__") and not isinstance(result, Path):
            with result:  # type: ignore[attr-defined]  # case_lock
                pass
    except api.CalfrehabError as exc:
        assert str(exc)  # a message, never an empty one
        if isinstance(exc, api.ArgumentError):
            assert exc.function == getattr(fn, "__name__", "")
        return None
    except Exception as exc:  # what the test is looking for
        return exc
    finally:
        for value in kwargs.values():
            if hasattr(value, "close") and type(value).__name__ == "AuditTrail":
                value.close()
    return None


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Env:
    return Env(tmp_path_factory.mktemp("api-errors"))


def test_every_function_is_in_the_table(env: Env) -> None:
    unknown = []
    for function in _functions():
        try:
            env.good(function)
        except LookupError:
            unknown.append(function)
    assert unknown == [], "add good arguments for these to Env.good"


# The interviews' good ``ask`` refuses the first question (an AnswerError):
# the bad paths and types are met before it is asked.
ASKS_FIRST = {"add_assessment", "log_morning", "log_session", "new_case"}


def test_the_good_arguments_are_good(env: Env) -> None:
    # Else a bad value would be tested beside another bad one, and could
    # pass for the wrong reason.
    failed = []
    for function in _functions():
        if function in TYPES_ONLY:
            continue
        try:
            _escaped_or_raise(getattr(api, function), env.good(function))
        except api.AnswerError:
            if function not in ASKS_FIRST:
                failed.append(function)
        except Exception as exc:
            failed.append(f"{function}: {exc}")
    assert failed == []


def _escaped_or_raise(fn: Callable[..., object], kwargs: dict[str, object]) -> None:
    result = fn(**kwargs)
    if hasattr(result, "__enter__") and not isinstance(result, Path):
        with result:  # type: ignore[attr-defined]
            pass


@pytest.mark.parametrize("function", _functions())
def test_only_the_error_tree_escapes(env: Env, function: str) -> None:
    fn = getattr(api, function)
    leaks = []
    for case, kwargs in _cases(env, function):
        exc = _escaped(fn, kwargs)
        if exc is not None:
            leaks.append(f"{function}({case}): {type(exc).__name__}: {str(exc)[:120]}")
    assert leaks == []


@pytest.mark.parametrize("function", ["decide_path", "record", "condition_line", "cds_cards"])
def test_the_walk_finds_the_leaks_of_a_function_served_unguarded(env: Env,
                                                                  function: str) -> None:
    # The walk above is not vacuous: the same cases, given the function
    # inside the guard, let something other than the error tree out.
    bare = getattr(api, function).__wrapped__
    assert any(_escaped(bare, kwargs) is not None for _case, kwargs in _cases(env, function))


def test_an_argument_error_names_function_parameter_value_and_type(env: Env) -> None:
    with pytest.raises(api.ArgumentError) as caught:
        api.decide_path(env.case_path, 42)  # type: ignore[arg-type]
    err = caught.value
    assert (err.function, err.parameter, err.value) == ("decide_path", "reasoner", 42)
    assert str(err) == ("decide_path(): argument reasoner is 42 (int); expected Reasoner")
    assert isinstance(err, TypeError)  # as Python's own would have been
    with pytest.raises(api.ArgumentError, match=r"missing a required argument: 'reasoner'"):
        api.decide_path(env.case_path)  # type: ignore[call-arg]


def test_a_bug_inside_is_not_blamed_on_the_caller() -> None:
    # Every argument fits: what escapes is re-raised as it is (a bug of
    # calfrehab's, which the walk above would report), not an ArgumentError.
    from calfrehab.engine.api._guard import guarded

    def broken(text: str) -> str:
        return text.no_such_method()  # type: ignore[attr-defined,no-any-return]

    with pytest.raises(AttributeError):
        guarded(broken)("fine")
    with pytest.raises(api.ArgumentError):
        guarded(broken)(42)  # type: ignore[arg-type]

    # A KeyError is blamed on the one mapping given that lacks the key; a
    # key every mapping given holds, or one two of them lack (which is
    # meant is not clear), is re-raised as it is.
    def reads(table: dict[str, int]) -> int:
        return table["k"]

    def own_bug(table: dict[str, int]) -> int:
        inner: dict[str, int] = {}
        return inner["k"]

    def two(first: dict[str, int], second: dict[str, int]) -> int:
        return first["k"] + second["k"]

    with pytest.raises(api.ArgumentError, match=r"table is \{\} .* with key 'k'"):
        guarded(reads)({})
    with pytest.raises(KeyError):
        guarded(own_bug)({"k": 1})
    with pytest.raises(api.ArgumentError, match=r"argument second is \{\}"):
        guarded(two)({"k": 1}, {})
    with pytest.raises(KeyError):
        guarded(two)({}, {})


def test_the_guard_s_rule_for_each_kind_of_annotation() -> None:
    # One call that fails for each kind of annotation the API uses: the
    # argument is blamed exactly when it does not fit.
    from calfrehab.engine.api._guard import guarded

    def fails(path: Path, ratio: float, names: list[str], rows: Iterable[int],
              kind: Literal["a", "b"] | None, when: date | None,
              ask: Callable[[str], object], anything: Any) -> None:
        raise TypeError("inside")

    call: Callable[..., None] = guarded(fails)
    good: dict[str, object] = {"path": "case.json", "ratio": 1, "names": ["x"],
                               "rows": iter("no"), "kind": None, "when": date(2026, 1, 1),
                               "ask": print, "anything": object()}
    with pytest.raises(TypeError, match="inside") as caught:
        call(**good)
    assert not isinstance(caught.value, api.ArgumentError)  # all fit: re-raised
    assert list(good["rows"]) == ["n", "o"]  # type: ignore[call-overload]  # not used up
    for name, bad in [("path", 42), ("ratio", True), ("names", ["x", 1]), ("names", "x"),
                      ("rows", "x"), ("kind", "c"), ("when", "2026-01-01"), ("ask", 1)]:
        with pytest.raises(api.ArgumentError) as blamed:
            call(**{**good, "rows": [], name: bad})
        assert (blamed.value.parameter, blamed.value.value) == (name, bad)


def test_a_keyboard_interrupt_passes_the_guard() -> None:
    from calfrehab.engine.api._guard import guarded

    def interrupted(path: Path) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        guarded(interrupted)(42)  # type: ignore[arg-type]


def test_a_condition_line_names_a_mapping_that_is_no_condition() -> None:
    # Its second mapping (the dates) lacks "fact" too, so the guard could
    # not tell which was meant: condition_line says so itself.
    with pytest.raises(api.ArgumentError, match=r"argument c is \{'fact': 'x'\} .* 'op'"):
        api.condition_line({"fact": "x"}, {})


def test_every_function_s_annotations_resolve() -> None:
    # The guard evaluates a failed call's annotations (api/_guard.py): a
    # name a module imports only for type checkers must be in its table, or
    # the guard itself would fail with a NameError on a caller's mistake.
    from calfrehab.engine.api._guard import _hints

    for function in _functions():
        assert _hints(getattr(api, function).__wrapped__), function


def test_the_base_class_is_never_raised() -> None:
    # A caller catches a kind of error by its class: every raise names the
    # specific subclass of the tree, never CalfrehabError itself.
    import ast

    found = []
    for path in sorted((ROOT / "calfrehab").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                func = node.exc.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name == "CalfrehabError":
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []


def test_an_unparsable_manifest_is_one_problem_not_one_per_rule(env: Env) -> None:
    with pytest.raises(api.RuleError) as caught:
        api.prepare(env.bad_paths["rules with bad YAML"])  # type: ignore[arg-type]
    assert [(p.file, p.line) for p in caught.value.problems] == [("rulebase.yaml", 2)]
    assert "not valid YAML" in caught.value.problems[0].message
