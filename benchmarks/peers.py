"""durable-rules against its peers, on the same compiled rule base and facts.

    python benchmarks/peers.py                      # 2,000 cases, 3 rounds
    python benchmarks/peers.py --quick              # 400 cases, 3 rounds
    python benchmarks/peers.py --json out.json

Every evaluator gets the same compiled rule base (``pipeline.prepare()``)
and the same facts (``compute_facts`` of generated cases, and for the
prescription phase the values the engine's driver sends it), and must fire
the same rule instances on every case; the script checks that before it
times anything, and says so.

- ``evaluate``, current driver: ``Reasoner.evaluate`` (facts, rulesets,
  firing records, policy), one durable state per ruleset reused, only the
  facts some pattern can match sent;
- ``evaluate``, previous driver: the same with a new state per case and every
  fact a ruleset reads sent (``Reasoner(..., reuse_states=False,
  matchable_only=False)``);
- durable's C calls alone, for each driver: every call the driver made into
  ``durable_rules_engine``, recorded once and replayed in a bare loop (the
  time durable itself takes);
- CLIPS through clipspy: the rules generated from the compiled patterns
  (one CLIPS rule per durable rule, the same tests on the same facts, the
  same strata, flags chained forward), and per case one call of a
  deffunction that resets, asserts the facts, runs stratum by stratum and
  returns the rules that fired;
- the plain-Python floor: one generated Python function per rule (the same
  patterns as Python expressions), run stratum by stratum to a fixpoint.
  It is also a test oracle (``tests/engine/inference/test_driver_states.py``).

Times are the thread's CPU time per case (waiting for a CPU on a shared
machine is not counted), median of the rounds; within each round the
evaluators run interleaved in chunks of 25 cases, in a rotated order per
chunk, so a change of load falls on all alike. Nothing here is a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import casegen  # noqa: E402
import durable_rules_engine  # noqa: E402

from calfrehab.engine.casefile.model import Case  # noqa: E402
from calfrehab.engine.casefile.validation import validate_document  # noqa: E402
from calfrehab.engine.inference.driver import Evaluation, Reasoner  # noqa: E402
from calfrehab.engine.inference.facts import compute_facts  # noqa: E402
from calfrehab.engine.inference.policy import decision_facts  # noqa: E402
from calfrehab.engine.knowledge.compiler import CompiledRuleBase  # noqa: E402

CLOCK = time.thread_time
CHUNK = 25

# ------------------------------------------------------------ the patterns

# A test on one fact's value: (operator, constant) or (operator, alias of an
# earlier fact whose value it is compared with).
_OPS = {"$lt": "<", "$lte": "<=", "$gt": ">", "$gte": ">=", "$neq": "!="}


@dataclass(frozen=True)
class Test:
    op: str  # exists, missing, ==, !=, <, <=, >, >=, in
    value: Any = None
    ref: str | None = None  # alias of the fact compared with


@dataclass(frozen=True)
class Pattern:
    alias: str
    fact: str
    tests: tuple[Test, ...]


@dataclass(frozen=True)
class Rule:
    """One durable rule (one alternative of a rule instance)."""

    name: str  # durable rule name, instance key#n
    key: str  # rule instance
    stratum: int  # -1: the prescription phase
    asserts: str | None
    patterns: tuple[Pattern, ...]


def _test(t: Mapping[str, Any]) -> Test:
    if t == {"$ex": {"v": 1}}:
        return Test("exists")
    if t == {"$nex": {"v": 1}}:
        return Test("missing")
    (op, body), = t.items()
    if op == "$or":
        options = [_test(x) for x in body]
        if not all(o.op == "==" and o.ref is None for o in options):
            raise ValueError(f"unsupported test {t}")
        return Test("in", tuple(o.value for o in options))
    if op == "v":
        rhs, cmp = body, "=="
    elif op in _OPS and set(body) == {"v"}:
        rhs, cmp = body["v"], _OPS[op]
    else:
        raise ValueError(f"unsupported test {t}")
    if isinstance(rhs, dict):
        (alias, prop), = rhs.items()
        if prop != "v":
            raise ValueError(f"unsupported test {t}")
        return Test(cmp, ref=alias)
    return Test(cmp, rhs)


def rules_of(compiled: CompiledRuleBase) -> list[Rule]:
    """Every durable rule of the compiled rule base, read back from the
    definitions the driver registers (not from the rule files)."""
    out = []
    phases = [(k, keys) for k, keys in enumerate(compiled.strata)]
    phases.append((-1, compiled.prescribe))
    for stratum, keys in phases:
        for key in keys:
            inst = compiled.instances[key]
            for d in inst.disjuncts:
                patterns = []
                for pattern in d.definition["all"]:
                    (alias, body), = pattern.items()
                    parts = body.get("$and", [body])
                    fact = parts[0]["n"]
                    patterns.append(Pattern(alias, fact, tuple(_test(t) for t in parts[1:])))
                out.append(Rule(d.key, key, stratum, inst.asserts, tuple(patterns)))
    return out


# ------------------------------------------------------- the Python floor


def _py_test(var: str, t: Test) -> str:
    if t.op == "exists":
        return f"{var} is not None"
    if t.op == "missing":
        return f"{var} is None"
    if t.op == "in":
        return f"{var} in {t.value!r}"
    rhs = f"_{t.ref}" if t.ref else repr(t.value)
    if isinstance(t.value, bool) and t.op == "==":
        return f"{var} is {t.value!r}"
    guard = f"{rhs} is not None and " if t.ref else ""
    if t.op in ("==", "!="):
        return f"({guard}{var} is not None and {var} {t.op} {rhs})"
    return f"({guard}{var} is not None and {var} {t.op} {rhs})"


def _py_rule(rule: Rule) -> str:
    lines = [f"def {_py_name(rule.name)}(v):"]
    for p in rule.patterns:
        lines.append(f"    _{p.alias} = v.get({p.fact!r}, _ABSENT)")
        lines.append(f"    if _{p.alias} is _ABSENT: return False")
        for t in p.tests:
            lines.append(f"    if not ({_py_test('_' + p.alias, t)}): return False")
    lines.append("    return True")
    return "\n".join(lines)


def _py_name(name: str) -> str:
    return "r_" + "".join(c if c.isalnum() else "_" for c in name) + f"_{abs(hash(name))}"


class Floor:
    """The plain-Python floor: one generated function per durable rule,
    stratum by stratum to a fixpoint, flags chained forward as durable
    does. A fact the driver would not send (a flag not yet settled) is
    absent; a missing value is present as None."""

    def __init__(self, reasoner: Reasoner) -> None:
        compiled = reasoner.compiled
        rules = rules_of(compiled)
        namespace: dict[str, Any] = {"_ABSENT": object()}
        exec(compile("\n\n".join(_py_rule(r) for r in rules), "<floor>", "exec"),
             namespace)
        by_stratum: dict[int, list[tuple[str, Callable[[Any], bool], str | None]]] = {}
        for r in rules:
            by_stratum.setdefault(r.stratum, []).append(
                (r.key, namespace[_py_name(r.name)], r.asserts))
        self.strata = [by_stratum.get(k, []) for k in range(len(compiled.strata))]
        self.prescribe = by_stratum.get(-1, [])
        # Flags settled before each stratum (sent as false unless true).
        self.settled = [[n for n, is_flag, complete, _ in plan if is_flag and complete]
                        for plan in reasoner._reads]

    def fired(self, values: Mapping[str, Any], rx: Mapping[str, Any] | None) -> set[str]:
        vals = dict(values)
        held: set[str] = set()
        for k, rules in enumerate(self.strata):
            for flag in self.settled[k]:
                if vals.get(flag) is not True:
                    vals[flag] = False
            changed = True
            while changed:
                changed = False
                for key, fn, asserts in rules:
                    if key not in held and fn(vals):
                        held.add(key)
                        if asserts and vals.get(asserts) is not True:
                            vals[asserts] = True
                            changed = True
        if rx is not None:
            for key, fn, _ in self.prescribe:
                if key not in held and fn(rx):
                    held.add(key)
        return held


# ------------------------------------------------------------------- CLIPS


def _clips_const(v: Any) -> str:
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, int | float):
        return repr(v)
    raise ValueError(f"no CLIPS constant for {v!r}")


def _clips_test(var: str, t: Test) -> str:
    """A constraint on ``var`` (the bound value), as a CLIPS connective."""
    if t.op == "exists":
        return "~nil"
    if t.op == "missing":
        return "nil"
    if t.op == "in":
        if all(isinstance(x, str | bool) for x in t.value):
            return "|".join(_clips_const(x) for x in t.value)
        return ":(or " + " ".join(
            f"(and (numberp {var}) (= {var} {_clips_const(x)}))" for x in t.value) + ")"
    rhs = "?" + t.ref if t.ref else _clips_const(t.value)
    if t.ref is None and isinstance(t.value, str | bool):
        if t.op == "==":
            return rhs
        if t.op == "!=":
            return "~" + rhs
        raise ValueError(f"no CLIPS order test on {t.value!r}")
    num = f"(numberp {var})" + (f" (numberp {rhs})" if t.ref else "")
    cmp = {"==": "=", "!=": "<>"}.get(t.op, t.op)
    if t.op == "!=":
        return f":(or (not (numberp {var})) (<> {var} {rhs}))"
    return f":(and {num} ({cmp} {var} {rhs}))"


def clips_program(reasoner: Reasoner) -> str:
    """The CLIPS constructs for the compiled rule base: templates, one rule
    per durable rule, and ``run-case``, which evaluates one case."""
    rules = rules_of(reasoner.compiled)
    out = [
        "(deftemplate f (slot n) (slot v))",  # a decide-phase fact
        "(deftemplate r (slot n) (slot v))",  # a prescription-phase fact
        "(deftemplate fired (slot k))",
    ]
    for i, rule in enumerate(rules):
        if any({"exists", "missing"} <= {t.op for t in p.tests} for p in rule.patterns):
            # An alternative that asks for a value and its absence at once
            # (disjunctive normal form makes some): durable never matches
            # it, and CLIPS refuses to build it.
            continue
        template = "r" if rule.stratum < 0 else "f"
        lhs = []
        for p in rule.patterns:
            var = "?" + p.alias
            cons = "&".join([var, *(_clips_test(var, t) for t in p.tests)])
            lhs.append(f"({template} (n {_clips_const(p.fact)}) (v {cons}))")
        rhs = [f"(assert (fired (k {_clips_const(rule.key)})))"]
        if rule.asserts:
            rhs.append(f"(assert (f (n {_clips_const(rule.asserts)}) (v TRUE)))")
        out.append(f"(defrule p{i} " + " ".join(lhs) + " => " + " ".join(rhs) + ")")
    body = [
        "(reset)",
        "(bind ?i 1)",
        "(while (< ?i ?nbase) (assert (f (n (nth$ ?i ?nv)) (v (nth$ (+ ?i 1) ?nv))))"
        " (bind ?i (+ ?i 2)))",
    ]
    for plan in reasoner._reads:
        for name, is_flag, complete, _ in plan:
            if is_flag and complete:
                c = _clips_const(name)
                body.append(
                    f"(if (not (any-factp ((?x f)) (and (eq ?x:n {c}) (eq ?x:v TRUE))))"
                    f" then (assert (f (n {c}) (v FALSE))))")
        body.append("(run)")
    body += [
        "(while (< ?i (length$ ?nv)) (assert (r (n (nth$ ?i ?nv)) (v (nth$ (+ ?i 1) ?nv))))"
        " (bind ?i (+ ?i 2)))",
        "(if (> (length$ ?nv) ?nbase) then (run))",
        "(bind ?out (create$))",
        "(do-for-all-facts ((?x fired)) TRUE (bind ?out (create$ ?out ?x:k)))",
        "?out",
    ]
    out.append("(deffunction run-case (?nbase $?nv) " + " ".join(body) + ")")
    return "\n".join(out)


class Clips:
    """CLIPS (through clipspy) on the rules generated from the compiled
    rule base; one deffunction call per case."""

    def __init__(self, reasoner: Reasoner) -> None:
        import clips

        self.env = clips.Environment()
        for construct in _constructs(clips_program(reasoner)):
            self.env.build(construct)
        self._run = self.env.find_function("run-case")

    def fired(self, flat: list[Any]) -> set[str]:
        """``flat``: the arguments of ``run-case`` (see :func:`clips_args`)."""
        return set(self._run(*flat))


def _constructs(program: str) -> Iterator[str]:
    yield from program.split("\n")


def clips_args(values: Mapping[str, Any], rx: Mapping[str, Any] | None) -> list[Any]:
    """One case as ``run-case`` takes it: the index just past the base
    facts' name/value pairs, then those pairs, then the prescription
    phase's (none for a referred case)."""
    flat: list[Any] = []
    for name, value in values.items():
        flat += [name, value]
    base = len(flat) + 1
    for name, value in (rx or {}).items():
        flat += [name, value]
    return [base, *flat]


# ---------------------------------------------------------------- the cases


@dataclass
class Prepared:
    case: Case
    values: dict[str, Any]  # base facts, a missing value as None
    rx: dict[str, Any] | None  # the prescription phase's facts, as sent
    fired: set[str]  # the rule instances the current driver fired


def rx_values(reasoner: Reasoner, ev: Evaluation) -> dict[str, Any] | None:
    """The prescription phase's facts as the driver sends them (None for
    a referred case: the phase does not run)."""
    if ev.outcome == "refer" or not reasoner.compiled.prescribe:
        return None
    decided = decision_facts(ev.tracks)
    values = ev.facts.values()
    return {n: decided[n] if n in decided else ev.flags[n] if n in ev.flags else values.get(n)
            for n, _, _, _ in reasoner._rx_plan}


def prepare_cases(reasoner: Reasoner, docs: Sequence[dict[str, Any]]) -> list[Prepared]:
    out = []
    for doc in docs:
        case = validate_document(doc, "<generated>")
        ev = reasoner.evaluate(case)
        values = dict(compute_facts(case, reasoner.settings).values())
        out.append(Prepared(case, values, rx_values(reasoner, ev),
                            {f.rule for f in ev.firings}))
    return out


# ---------------------------------------------------------------- recording

_TAKES_STATE = {"start_action_for_state", "complete_and_start_action", "abandon_action"}
_GIVES_STATE = {"assert_facts", "assert_events"}
_STATE = object()
Op = tuple[Callable[..., Any], tuple[Any, ...], str]


@contextmanager
def recording(ops: list[Op]) -> Iterator[None]:
    """Records every call into ``durable_rules_engine`` (installed on the
    module, so the driver's calls go through it)."""
    saved = {}
    last: list[Any] = [None]

    def wrap(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def recorded(*args: Any) -> Any:
            result = fn(*args)
            if name in _TAKES_STATE and len(args) > 1 and args[1] == last[0]:
                args = (args[0], _STATE, *args[2:])
            ops.append((fn, args, name))
            if name in _GIVES_STATE:
                last[0] = result[1]
            return result
        return recorded

    for name in dir(durable_rules_engine):
        fn = getattr(durable_rules_engine, name)
        if callable(fn) and not name.startswith("_") and not isinstance(fn, type):
            saved[name] = fn
            setattr(durable_rules_engine, name, wrap(name, fn))
    try:
        yield
    finally:
        for name, fn in saved.items():
            setattr(durable_rules_engine, name, fn)


def replay(ops: list[Op]) -> None:
    state: Any = None
    for fn, args, name in ops:
        if len(args) > 1 and args[1] is _STATE:
            args = (args[0], state, *args[2:])
        result = fn(*args)
        if name in _GIVES_STATE:
            state = 0 if result[0] == 3 else result[1]


# ------------------------------------------------------------------ measure


def _loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def check(cases: list[Prepared], new: Reasoner, old: Reasoner, floor: Floor,
          clips: Clips | None) -> dict[str, int]:
    """How many cases each evaluator fires exactly the current driver's
    rule instances on."""
    same = {"previous driver": 0, "floor": 0, "clips": 0}
    for p in cases:
        same["previous driver"] += {f.rule for f in old.evaluate(p.case).firings} == p.fired
        same["floor"] += floor.fired(p.values, p.rx) == p.fired
        if clips is not None:
            same["clips"] += clips.fired(clips_args(p.values, p.rx)) == p.fired
    if clips is None:
        del same["clips"]
    return same


def measure(n: int, rounds: int, seed: int) -> dict[str, Any]:
    from calfrehab.engine import pipeline

    compiled = pipeline.prepare(None).compiled
    # The reused states: the default on the durable-rules build with the
    # retraction fix (durable_host.retract_safe()); forced here so that the
    # plain build measures them too (a quick run stays well below the
    # thousands of cases after which the plain build faulted).
    new = Reasoner(compiled, reuse_states=True)
    old = Reasoner(compiled, reuse_states=False, matchable_only=False)
    floor = Floor(new)
    clips_error = None
    clips: Clips | None
    try:
        clips = Clips(new)
    except ImportError as exc:  # clipspy not installed
        clips, clips_error = None, f"clipspy could not be imported: {exc}"
    cases = prepare_cases(new, list(casegen.generate_cases(n, seed=seed)))
    same = check(cases, new, old, floor, clips)
    chunks = [cases[i:i + CHUNK] for i in range(0, n, CHUNK)]
    # The C calls of each chunk, for each driver, recorded once.
    c_ops: dict[str, list[list[Op]]] = {"new": [], "old": []}
    for part in chunks:
        for label, r in (("new", new), ("old", old)):
            ops: list[Op] = []
            with recording(ops):
                for p in part:
                    r.evaluate(p.case)
            c_ops[label].append(ops)
    args = [[clips_args(p.values, p.rx) for p in part] for part in chunks]

    def ev(r: Reasoner, part: list[Prepared], _: int) -> None:
        for p in part:
            r.evaluate(p.case)

    def fl(part: list[Prepared], _: int) -> None:
        for p in part:
            floor.fired(p.values, p.rx)

    def cl(part: list[Prepared], i: int) -> None:
        assert clips is not None
        for a in args[i]:
            clips.fired(a)

    def c_new(part: list[Prepared], i: int) -> None:
        replay(c_ops["new"][i])

    def c_old(part: list[Prepared], i: int) -> None:
        replay(c_ops["old"][i])

    runners: dict[str, Callable[[list[Prepared], int], None]] = {
        "evaluate_new": lambda part, i: ev(new, part, i),
        "evaluate_old": lambda part, i: ev(old, part, i),
        "c_new": c_new,
        "c_old": c_old,
        "floor": fl,
    }
    if clips is not None:
        runners["clips"] = cl
    names = list(runners)
    for name in names:  # warm up
        runners[name](chunks[0], 0)
    load_start = _loadavg()
    totals: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(rounds):
        spent = dict.fromkeys(names, 0.0)
        for i, part in enumerate(chunks):
            shift = i % len(names)
            for name in names[shift:] + names[:shift]:
                start = CLOCK()
                runners[name](part, i)
                spent[name] += CLOCK() - start
        for name in names:
            totals[name].append(spent[name] * 1e6 / n)
    us = {name: round(statistics.median(v), 1) for name, v in totals.items()}
    base = us["c_old"]
    return {
        "benchmark": "peers",
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "cases": n,
        "seed": seed,
        "rounds": rounds,
        "loadavg_start": load_start,
        "loadavg_end": _loadavg(),
        "same_rules": same,
        "clips": clips_error or "clipspy " + _version("clipspy"),
        "us": us,
        "rounds_us": {k: [round(x, 1) for x in v] for k, v in totals.items()},
        "ratio_to_c_old": {k: round(v / base, 3) for k, v in us.items()},
        "c_new_over_c_old": round(us["c_new"] / us["c_old"], 3),
        "evaluate_new_over_c_old": round(us["evaluate_new"] / us["c_old"], 3),
        "facts_sent_per_case": _facts_sent(new, old, cases[: min(n, 300)]),
    }


def _facts_sent(new: Reasoner, old: Reasoner, cases: list[Prepared]) -> dict[str, float]:
    out = {}
    for label, r in (("new", new), ("old", old)):
        ops: list[Op] = []
        with recording(ops):
            for p in cases:
                r.evaluate(p.case)
        sent = sum(len(json.loads(a[1])) - 1 for _, a, name in ops if name == "assert_facts")
        out[label] = round(sent / len(cases), 1)
    return out


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"


LABELS = {
    "evaluate_new": "`Reasoner.evaluate`, reused states and matchable facts (the default on "
                    "the fixed durable-rules build)",
    "evaluate_old": "`Reasoner.evaluate`, previous driver (a state per case, every fact read)",
    "c_new": "durable-rules' C calls alone, reused states and matchable facts",
    "c_old": "durable-rules' C calls alone, previous driver",
    "clips": "CLIPS through clipspy (one deffunction call: reset, assert, run)",
    "floor": "plain Python, a generated function per rule (the floor)",
}


def markdown(r: dict[str, Any]) -> str:
    load = " ".join(map(str, r["loadavg_start"])), " ".join(map(str, r["loadavg_end"]))
    same = ", ".join(f"{k} {v:,}/{r['cases']:,}" for k, v in r["same_rules"].items())
    rows = [f"| {LABELS[k]} | {v:,.0f} | {r['ratio_to_c_old'][k]:.2f}× |"
            for k, v in sorted(r["us"].items(), key=lambda kv: -kv[1])]
    lines = [
        "## Peers: durable-rules, CLIPS and plain Python on the same rules and facts",
        "",
        "<!-- Generated by benchmarks/peers.py; do not edit by hand. -->",
        "",
        f"`python benchmarks/peers.py --cases {r['cases']} --rounds {r['rounds']}` "
        f"(Python {r['python']}, {r['cpus']} CPUs; {r['clips']}; load average "
        f"{load[0]} at start, {load[1]} at end). Thread CPU time per case, median of "
        "the rounds, the evaluators interleaved in chunks of 25 cases. How each is run "
        "is described at the top of the script.",
        "",
        f"Same rule instances fired as the current driver: {same}.",
        "",
        "| evaluator | µs per case | against durable's C today (previous driver) |",
        "|---|---:|---:|",
        *rows,
        "",
        f"durable's C time, current driver against previous: "
        f"**{r['c_new_over_c_old']:.2f}×**; `evaluate` (current) against durable's C "
        f"time today: **{r['evaluate_new_over_c_old']:.2f}×**. Facts sent to durable per "
        f"case: {r['facts_sent_per_case']['new']} (current) against "
        f"{r['facts_sent_per_case']['old']} (previous).",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="400 cases")
    parser.add_argument("--json", type=Path, default=HERE / "out" / "peers.json")
    args = parser.parse_args(argv)
    n = 400 if args.quick else args.cases
    result = measure(n, args.rounds, args.seed)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
