"""Knowledge-base tests as data: case tables beside the rule files.

A rules directory keeps one table per rule file in ``cases/``
(``cases/<rule-file-stem>.cases.yaml``)::

    rules_file: pain-model.yaml
    base: {...a complete, valid case document (case format v1)...}
    cases:
      - name: pain 6 during regresses the straight-knee track
        why: clinical-basis §1, pain during above 5/10 is not acceptable
        set: {"sessions[1].exercises[0].pain_during": 6}
        remove: ["assessments"]
        expect: {outcome: continue, straight_knee: regress, bent_knee: start}
        next: {straight_knee: two_leg_heel_raise, energy_storage: null}
        fires: [regress-pain-during-over-limit@straight_knee]
        not_fires: [progress-track@straight_knee]

Each case is the base with its changes: ``remove`` first (each path is
deleted: a field, or an item of a list), then ``set`` (each path gets the
value; ``[n]`` one past the end of a list appends). Paths are written as
validation errors write them (``sessions[1].exercises[0].pain_during``).
The result is validated as a case file and decided; then the table's
expectations are compared: the outcome, each track's decision, each
track's next prescription (an exercise id, ``null``, or an object of
prescription fields, with ``cues`` listing cues that must be among the
prescription's), which rules fired or did not, and which rules the
decision document's reasons name (``reasons``). A rule key is an
instance key, ``rule-id@track`` for a track rule and ``rule-id`` for a
case-level one; a bare id of a track rule means "on any track".

Coverage, over all tables of the directory: every rule fires in at least
one case, and every decision rule (``then.decision`` or ``refer``) is listed
in ``not_fires`` by at least one case, of a condition kind it applies to,
where exactly one of its conditions fails (one fact; for an ``any``, every
alternative fails on that fact): each decision is also shown not happening
when one condition fails.

A broken table (bad YAML, an unknown field, a path that is not in the
document, a case that is invalid after its changes, an unknown rule key) is
a failure of that table or case, named by file and case, never a traceback.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from calfrehab.engine import pipeline
from calfrehab.engine.casefile.docpath import PathError, format_path, remove_path, set_path
from calfrehab.engine.errors import CalfrehabError, CaseTableError, CaseValidationError, InputError
from calfrehab.engine.explanation.explain import Explainer, blocking_leaves
from calfrehab.engine.inference.driver import Evaluation, Reasoner
from calfrehab.engine.knowledge.compiler import CompiledRuleBase
from calfrehab.engine.knowledge.loader import MANIFEST, default_rules_dir, rule_files
from calfrehab.engine.limits import max_input_bytes
from calfrehab.engine.safeio import read_input_bytes
from calfrehab.engine.vocabulary import TRACKS, DecisionKind, Outcome

CASES_DIR = "cases"
COURSES_DIR = "courses"
# The C safe loader when PyYAML has libyaml (tables are long; same result).
_SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
TABLE_GLOB = "*.cases.yaml"
TABLE_LEVEL = "(table)"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class Expect(_Model):
    outcome: Outcome | None = None
    straight_knee: DecisionKind | None = None
    bent_knee: DecisionKind | None = None
    energy_storage: DecisionKind | None = None


class NextExpect(_Model):
    """Fields the next prescription must have; ``cues`` must be among its cues."""

    exercise: str | None = None
    load_kg: float | None = None
    sets: int | None = None
    reps: int | None = None
    unit: str | None = None
    tempo: str | None = None
    frequency: str | None = None
    range: Literal["floor", "off_step", "none"] | None = None
    surface: str | None = None
    cues: list[str] = Field(default_factory=list)


NextValue = str | NextExpect | None


class NextByTrack(_Model):
    straight_knee: NextValue = None
    bent_knee: NextValue = None
    energy_storage: NextValue = None


class TableCase(_Model):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    why: str | None = None
    set: dict[str, Any] = Field(default_factory=dict)
    remove: list[str] = Field(default_factory=list)
    expect: Expect = Expect()
    next: NextByTrack = NextByTrack()
    fires: list[str] = Field(default_factory=list)
    not_fires: list[str] = Field(default_factory=list)
    # Rules the decision document's `reasons` must name (what the clinician reads).
    reasons: list[str] = Field(default_factory=list)
    # Decide this case as a clinic whose rulebase.yaml sets these parameters
    # would (a threshold changed, a clinic-practice gate switched on), so one
    # table can show the shipped set-up and a clinic's side by side.
    parameters: dict[str, float | int] = Field(default_factory=dict)


class CaseTable(_Model):
    rules_file: str
    description: str | None = None
    base: dict[str, Any]
    cases: list[TableCase] = Field(min_length=1)


class _TableHead(_Model):
    """The table with its cases unchecked, so one bad case does not hide the rest."""

    rules_file: str
    description: str | None = None
    base: dict[str, Any]
    cases: list[Any] = Field(min_length=1)


@dataclass
class CaseResult:
    file: str
    name: str
    passed: bool
    problems: list[str] = field(default_factory=list)
    fired: list[str] = field(default_factory=list)
    # Decision rules this case shows not firing with exactly one of their
    # conditions failing (its not_fires entries that count for coverage).
    near_misses: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "name": self.name, "passed": self.passed,
                "problems": self.problems, "fired": self.fired,
                "near_misses": self.near_misses}


@dataclass
class TableReport:
    rules_dir: Path
    results: list[CaseResult] = field(default_factory=list)
    uncovered_rules: list[str] = field(default_factory=list)
    decision_rules_without_negative_case: list[str] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    rule_count: int = 0

    @property
    def passed(self) -> int:
        return sum(r.passed for r in self.results)

    @property
    def failed(self) -> int:
        return sum(not r.passed for r in self.results)

    @property
    def ok(self) -> bool:
        return (bool(self.results) and self.failed == 0 and not self.uncovered_rules
                and not self.decision_rules_without_negative_case)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rules_dir": str(self.rules_dir),
            "ok": self.ok,
            "tables": self.tables,
            "passed": self.passed,
            "failed": self.failed,
            "results": [r.as_dict() for r in self.results],
            "coverage": {
                "rules": self.rule_count,
                "uncovered_rules": self.uncovered_rules,
                "decision_rules_without_negative_case": self.decision_rules_without_negative_case,
            },
        }


def apply_changes(base: dict[str, Any], case: TableCase) -> dict[str, Any]:
    doc = copy.deepcopy(base)
    for path in case.remove:
        remove_path(doc, path)
    for path, value in case.set.items():
        set_path(doc, path, value)
    return doc


# ------------------------------------------------------------------ running


@dataclass
class _RuleKeys:
    instances: dict[str, str]  # instance key -> rule id
    tracked: dict[str, list[str]]  # rule id -> its instance keys

    @classmethod
    def of(cls, compiled: CompiledRuleBase) -> _RuleKeys:
        tracked: dict[str, list[str]] = {}
        for key, inst in compiled.instances.items():
            tracked.setdefault(inst.rule.id, []).append(key)
        return cls({k: i.rule.id for k, i in compiled.instances.items()}, tracked)

    def expand(self, key: str) -> list[str] | None:
        """Instance keys a table key stands for; None when unknown."""
        if key in self.instances:
            return [key]
        if "@" not in key and key in self.tracked:
            return self.tracked[key]
        return None

    def unknown_message(self, key: str) -> str:
        import difflib

        close = difflib.get_close_matches(key, [*self.instances, *self.tracked], n=1, cutoff=0.6)
        hint = f"; did you mean `{close[0]}`?" if close else ""
        return f"unknown rule key `{key}` (not a rule, or not on that track){hint}"


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f" (line {mark.line + 1})" if mark is not None else ""
    return f"not valid YAML{where}: {getattr(exc, 'problem', None) or exc}"


def _model_problems(exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors(include_url=False):
        loc = format_path([p for p in err["loc"] if isinstance(p, str | int)])
        msg = ("unknown field" if err["type"] == "extra_forbidden"
               else "required field is missing" if err["type"] == "missing" else err["msg"])
        out.append(f"{loc or '(table)'}: {msg}")
    return out


def _case_name(raw: Any, index: int) -> str:
    if isinstance(raw, dict) and isinstance(raw.get("name"), str) and raw["name"]:
        return str(raw["name"])
    return f"case {index + 1}"


def load_table(path: Path) -> tuple[CaseTable | None, list[CaseResult]]:
    """Parse a table; problems come back as failed results (table-level, or
    per case when only some cases are malformed, so the rest still run)."""
    name = path.name
    try:
        text = read_input_bytes(path, cap_bytes=max_input_bytes()).decode("utf-8")
        data = yaml.load(text, Loader=_SAFE_LOADER)
    except InputError as exc:
        return None, [CaseResult(name, TABLE_LEVEL, False, [exc.reason])]
    except UnicodeDecodeError as exc:
        return None, [CaseResult(name, TABLE_LEVEL, False, [f"cannot read: {exc}"])]
    except yaml.YAMLError as exc:
        return None, [CaseResult(name, TABLE_LEVEL, False, [_yaml_problem(exc)])]
    if not isinstance(data, dict):
        return None, [CaseResult(name, TABLE_LEVEL, False, ["expected a mapping at the top level"])]
    try:
        head = _TableHead.model_validate(data)
    except ValidationError as exc:
        return None, [CaseResult(name, TABLE_LEVEL, False, _model_problems(exc))]
    failures: list[CaseResult] = []
    cases: list[TableCase] = []
    seen: set[str] = set()
    for i, raw in enumerate(head.cases):
        label = _case_name(raw, i)
        try:
            case = TableCase.model_validate(raw)
        except ValidationError as exc:
            failures.append(CaseResult(name, label, False,
                                       [f"bad case entry: {p}" for p in _model_problems(exc)]))
            continue
        if case.name in seen:
            failures.append(CaseResult(name, label, False, ["case name used twice in this table"]))
            continue
        seen.add(case.name)
        cases.append(case)
    if not cases:
        return None, failures
    table = CaseTable(rules_file=head.rules_file, description=head.description,
                      base=head.base, cases=cases)
    return table, failures


def _show(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value if isinstance(value, str) else repr(value)


def _next_problems(track: str, want: NextValue, got: Any) -> list[str]:
    if want is None:
        return [] if got is None else [f"{track}: next is {got.exercise}, expected none"]
    if isinstance(want, str):
        want = NextExpect(exercise=want)
    if got is None:
        return [f"{track}: next is none, expected {want.exercise or 'a prescription'}"]
    out = []
    for fname in ("exercise", "load_kg", "sets", "reps", "unit", "tempo", "frequency",
                  "range", "surface"):
        expected = getattr(want, fname)
        if expected is None:
            continue
        actual = getattr(got, fname)
        same = (abs(float(actual) - float(expected)) < 1e-9 if fname == "load_kg"
                else actual == expected)
        if not same:
            out.append(f"{track}: next {fname} is {_show(actual)}, expected {_show(expected)}")
    for cue in want.cues:
        if cue not in got.cues:
            out.append(f"{track}: next cues lack {cue!r} (have {got.cues!r})")
    return out


def run_case(
    file: str, base: dict[str, Any], case: TableCase, reasoner: Reasoner, keys: _RuleKeys
) -> CaseResult:
    problems: list[str] = []
    for key in [*case.fires, *case.not_fires, *case.reasons]:
        if keys.expand(key) is None:
            problems.append(keys.unknown_message(key))
    try:
        doc = apply_changes(base, case)
    except PathError as exc:
        return CaseResult(file, case.name, False, [*problems, f"bad change: {exc}"])
    try:
        decided = pipeline.decide_document(doc, reasoner, f"{file}::{case.name}")
    except CaseValidationError as exc:
        return CaseResult(file, case.name, False,
                          [*problems, f"invalid case after changes ({len(exc.errors)} error(s))",
                           *(f"  {e.render()}" for e in exc.errors)])
    except CalfrehabError as exc:
        return CaseResult(file, case.name, False, [*problems, f"engine error: {exc}"])
    except Exception as exc:  # a test runner reports, it does not crash
        return CaseResult(file, case.name, False,
                          [*problems, f"internal error: {type(exc).__name__}: {exc}"])

    ev = decided.evaluation
    fired_keys = [f.rule for f in ev.firings]
    fired = set(fired_keys)
    want = case.expect
    if want.outcome is not None and ev.outcome != want.outcome:
        problems.append(f"outcome is {ev.outcome}, expected {want.outcome}")
    for track in TRACKS:
        expected = getattr(want, track)
        got = ev.tracks[track].decision
        if expected is not None and got != expected:
            problems.append(f"{track}: decision is {got}, expected {expected}")
    for track in TRACKS:
        if track in case.next.model_fields_set:
            problems += _next_problems(track, getattr(case.next, track), ev.tracks[track].next)
    for key in case.fires:
        inst = keys.expand(key)
        if inst is not None and not fired.intersection(inst):
            problems.append(f"{key} did not fire")
    for key in case.not_fires:
        inst = keys.expand(key)
        hit = sorted(fired.intersection(inst or []))
        if hit:
            where = "" if hit == [key] else f" ({', '.join(hit)})"
            problems.append(f"{key} fired{where}")
    given = {r.rule for r in decided.decision.reasons}
    for key in case.reasons:
        inst = keys.expand(key)
        if inst is not None and not given.intersection(inst):
            problems.append(f"the decision's reasons do not name {key} "
                            f"(they name {', '.join(sorted(given)) or 'nothing'})")
    try:
        near = _near_misses(case, ev, keys)
    except Exception:  # only coverage depends on it; a gap is reported instead
        near = []
    return CaseResult(file, case.name, not problems, problems, fired_keys, near)


def _near_misses(case: TableCase, ev: Evaluation, keys: _RuleKeys) -> list[str]:
    """Decision rules in ``not_fires`` that did not fire here because
    exactly one of their conditions failed (one fact: for an ``any`` every
    alternative fails on the same fact), for a condition kind they apply to."""
    values = Explainer(ev).values
    out: list[str] = []
    for key in case.not_fires:
        for inst_key in keys.expand(key) or []:
            inst = ev.compiled.instances[inst_key]
            rule = inst.rule
            if not (rule.then.decision or rule.then.refer) or rule.id in out:
                continue
            if inst_key in {f.rule for f in ev.firings}:
                continue
            kinds = rule.applies_to.conditions
            if kinds != "all" and ev.case.condition.kind not in kinds:
                continue
            failing = {leaf.fact for leaf, _ in blocking_leaves(inst.when, values)}
            if len(failing) == 1:
                out.append(rule.id)
    return out


class _ClinicVariants:
    """Reasoners for cases that change rulebase.yaml parameters: the rules
    directory copied with those parameters set, compiled once per set."""

    def __init__(self, directory: Path, reasoner: Reasoner) -> None:
        self.directory = directory
        self.reasoner = reasoner
        self.made: dict[tuple[tuple[str, float | int], ...], tuple[Reasoner, _RuleKeys]] = {}
        self.temp: list[tempfile.TemporaryDirectory[str]] = []

    def get(self, parameters: dict[str, float | int]) -> tuple[Reasoner, _RuleKeys]:
        key = tuple(sorted(parameters.items()))
        if key not in self.made:
            unknown = sorted(set(parameters) - set(self.reasoner.compiled.base.manifest.parameters))
            if unknown:
                raise CaseTableError(f"{', '.join(unknown)}: not parameters of {MANIFEST} "
                                     "(a case may only change existing ones)")
            holder = tempfile.TemporaryDirectory(prefix="calfrehab-rules-")
            self.temp.append(holder)
            copy_dir = Path(holder.name) / "rules"
            shutil.copytree(self.directory, copy_dir,
                            ignore=shutil.ignore_patterns("cases", "courses", "__pycache__"))
            manifest = yaml.load((copy_dir / MANIFEST).read_text(encoding="utf-8"),
                                 Loader=_SAFE_LOADER)
            manifest["parameters"] = {**manifest.get("parameters", {}), **parameters}
            (copy_dir / MANIFEST).write_text(yaml.safe_dump(manifest, sort_keys=False),
                                             encoding="utf-8")
            reasoner = pipeline.prepare(copy_dir)
            self.made[key] = (reasoner, _RuleKeys.of(reasoner.compiled))
        return self.made[key]

    def close(self) -> None:
        for holder in self.temp:
            holder.cleanup()


def table_paths(rules_dir: Path) -> list[Path]:
    return sorted((rules_dir / CASES_DIR).glob(TABLE_GLOB))


def run_tables(rules_dir: Path | None = None) -> TableReport:
    """Run every case table of a rules directory and measure rule coverage.

    A rules directory that does not load or compile raises RuleError (as
    every command does); problems in the tables are failed results."""
    directory = Path(rules_dir) if rules_dir is not None else default_rules_dir()
    reasoner = pipeline.prepare(directory)
    compiled = reasoner.compiled
    keys = _RuleKeys.of(compiled)
    report = TableReport(directory, rule_count=len(compiled.base.rules))
    known_files = {p.name for p in rule_files(directory)}

    fired_ids: set[str] = set()
    negative: dict[str, int] = {}  # decision rule id -> cases showing it not firing
    decision_rules = {lr.rule.id: lr.rule for lr in compiled.base.rules
                      if lr.rule.then.decision or lr.rule.then.refer}
    variants = _ClinicVariants(directory, reasoner)
    try:
        for path in table_paths(directory):
            report.tables.append(path.name)
            table, failures = load_table(path)
            report.results += failures
            if table is None:
                continue
            if table.rules_file not in known_files:
                report.results.append(CaseResult(
                    path.name, TABLE_LEVEL, False,
                    [f"rules_file `{table.rules_file}` is not a rule file of this directory"]))
            for case in table.cases:
                case_reasoner, case_keys = reasoner, keys
                if case.parameters:
                    try:
                        case_reasoner, case_keys = variants.get(case.parameters)
                    except (CalfrehabError, OSError, yaml.YAMLError) as exc:
                        report.results.append(CaseResult(path.name, case.name, False,
                                                         [f"bad parameters: {exc}"]))
                        continue
                result = run_case(path.name, table.base, case, case_reasoner, case_keys)
                report.results.append(result)
                fired_ids.update(case_keys.instances[k] for k in result.fired)
                for rule_id in result.near_misses:
                    negative[rule_id] = negative.get(rule_id, 0) + 1
    finally:
        variants.close()

    # Course tables: the same rules over a whole course (courses/*.yaml).
    from calfrehab.engine.ruletest.coursetable import course_paths, run_course_table

    for path in course_paths(directory):
        report.tables.append(f"{COURSES_DIR}/{path.name}")
        for row in run_course_table(path, reasoner):
            report.results.append(CaseResult(f"{COURSES_DIR}/{row.file}", row.name, row.passed,
                                             list(row.problems)))

    seen: list[str] = []
    for lr in compiled.base.rules:
        if lr.rule.id not in seen:
            seen.append(lr.rule.id)
    report.uncovered_rules = [r for r in seen if r not in fired_ids]
    report.decision_rules_without_negative_case = [
        r for r in seen if r in decision_rules and not negative.get(r)]
    return report
