"""What ``Reasoner.evaluate`` costs over durable-rules' own C engine.

    python benchmarks/engine_overhead.py                 # 600 cases, 5 rounds
    python benchmarks/engine_overhead.py --cases 300 --rounds 3 --json out.json --md page.md

Measured in ONE run, on the same cases (``benchmarks/casegen.py``), as the
thread's CPU time (time spent waiting for a CPU on a shared machine is not
counted):

- ``evaluate``: ``Reasoner.evaluate`` per case (computes the facts, runs
  the rulesets, records the firings, applies the policy);
- ``C``, the target's denominator: the time spent inside durable-rules' C
  extension (``durable_rules_engine``) during those evaluations. A second
  pass wraps each of its functions with the CPU clock; each interval is
  corrected by the clock's own cost, measured beforehand;
- ``C replayed``: every call ``evaluate`` made into the extension, recorded
  once (function and arguments) and replayed in a bare loop, same calls,
  same order, same JSON texts. The C code runs faster there than inside
  ``evaluate`` (its data stay in the CPU caches between calls), so the
  ratio to it is the stricter one; both are reported;
- the rest, split: fact computation (timed on its own) and the remainder
  (JSON, policy, calls). The firing records (``Firing``, ``Binding``) are
  built when first asked for (``Evaluation.firings``, by the decision
  document), not inside ``evaluate``; they are timed on their own and
  shown beside it.

Within each round the passes alternate in chunks of 25 cases, so a change
in load falls on all of them alike; medians over the rounds are reported
with the load average. Target: ``evaluate`` <= 1.5 x ``C``.
Nothing here is a test.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import casegen  # noqa: E402
import durable_rules_engine  # noqa: E402

from calfrehab.engine import api  # noqa: E402
from calfrehab.engine.casefile.model import Case  # noqa: E402
from calfrehab.engine.casefile.validation import validate_document  # noqa: E402
from calfrehab.engine.inference import policy  # noqa: E402
from calfrehab.engine.inference.facts import compute_facts  # noqa: E402
from calfrehab.engine.inference.firing import Binding, Firing  # noqa: E402

TARGET = 1.5
CLOCK = time.thread_time
CHUNK = 25
# Calls whose second argument is the state handle a preceding assert
# returned: replayed against the handle the replayed assert returns.
_TAKES_STATE = {"start_action_for_state", "complete_and_start_action", "abandon_action"}
_GIVES_STATE = {"assert_facts", "assert_events"}
_STATE = object()

Op = tuple[Callable[..., Any], tuple[Any, ...], str]


class _Recorder:
    """Records every call into ``durable_rules_engine`` (installed on the
    module, so every caller goes through it)."""

    def __init__(self) -> None:
        self.ops: list[Op] = []
        self._state: Any = None

    def _wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def recorded(*args: Any) -> Any:
            result = fn(*args)
            if name in _TAKES_STATE and len(args) > 1 and args[1] == self._state:
                args = (args[0], _STATE, *args[2:])
            self.ops.append((fn, args, name))
            if name in _GIVES_STATE:
                self._state = result[1]
            return result

        return recorded

    @contextmanager
    def installed(self) -> Iterator[None]:
        saved = {}
        for name in dir(durable_rules_engine):
            fn = getattr(durable_rules_engine, name)
            if callable(fn) and not name.startswith("_") and not isinstance(fn, type):
                saved[name] = fn
                setattr(durable_rules_engine, name, self._wrap(name, fn))
        try:
            yield
        finally:
            for name, fn in saved.items():
                setattr(durable_rules_engine, name, fn)


class _InContext:
    """Times every call into ``durable_rules_engine`` where it happens,
    inside ``evaluate``, with the thread's CPU clock; each interval is
    corrected by the clock's own cost, measured beforehand."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0
        clock = CLOCK
        samples = []
        for _ in range(2000):
            a = clock()
            samples.append(clock() - a)
        self.clock_cost = statistics.median(samples)

    def _wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        clock = CLOCK

        def timed(*args: Any) -> Any:
            start = clock()
            try:
                return fn(*args)
            finally:
                self.seconds += clock() - start
                self.calls += 1

        return timed

    def corrected(self) -> float:
        return self.seconds - self.calls * self.clock_cost

    @contextmanager
    def installed(self) -> Iterator[None]:
        saved = {}
        for name in dir(durable_rules_engine):
            fn = getattr(durable_rules_engine, name)
            if callable(fn) and not name.startswith("_") and not isinstance(fn, type):
                saved[name] = fn
                setattr(durable_rules_engine, name, self._wrap(fn))
        try:
            yield
        finally:
            for name, fn in saved.items():
                setattr(durable_rules_engine, name, fn)


def _replay(ops: list[Op]) -> None:
    state: Any = None
    for fn, args, name in ops:
        if len(args) > 1 and args[1] is _STATE:
            args = (args[0], state, *args[2:])
        result = fn(*args)
        if name in _GIVES_STATE:
            state = 0 if result[0] == 3 else result[1]


def _replay_by_function(ops: list[Op], spent: dict[str, float], clock_cost: float) -> None:
    clock = CLOCK
    state: Any = None
    for fn, args, name in ops:
        if len(args) > 1 and args[1] is _STATE:
            args = (args[0], state, *args[2:])
        start = clock()
        result = fn(*args)
        spent[name] = spent.get(name, 0.0) + clock() - start - clock_cost
        if name in _GIVES_STATE:
            state = 0 if result[0] == 3 else result[1]


_POLICY = ("resolve", "decision_facts", "apply_prescriptions")


@contextmanager
def _policy_recorded(calls: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]],
                     ) -> Iterator[None]:
    """Records every call ``evaluate`` makes into the policy module (the
    driver calls it through the module, so patching the module is enough)."""
    saved = {name: getattr(policy, name) for name in _POLICY}

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        def recorded(*args: Any, **kwargs: Any) -> Any:
            calls.append((fn, args, kwargs))
            return fn(*args, **kwargs)

        return recorded

    for name, fn in saved.items():
        setattr(policy, name, wrap(fn))
    try:
        yield
    finally:
        for name, fn in saved.items():
            setattr(policy, name, fn)


def _replay_policy(calls: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]],
                   ) -> None:
    for fn, args, kwargs in calls:
        fn(*args, **kwargs)


def _rebuild_records(firings: list[list[Firing]]) -> None:
    # The firing records as the driver makes them: one Firing per firing,
    # one Binding per matched fact with its own list of case-file paths.
    for case_firings in firings:
        [Firing(f.seq, f.rule, f.rule_id, f.track, f.phase, f.stratum,
                [Binding(b.fact, b.value, list(b.paths)) for b in f.matched],
                f.asserted, f.effect)
         for f in case_firings]


def _cases(n: int, seed: int) -> list[Case]:
    return [validate_document(doc) for doc in casegen.generate_cases(n, seed=seed)]


def _facts(reasoner: Any, part: list[Case]) -> None:
    for case in part:
        compute_facts(case, reasoner.settings)


def _timed(fn: Callable[[], object]) -> float:
    start = CLOCK()
    fn()
    return CLOCK() - start


def _loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def measure(n: int, rounds: int, seed: int) -> dict[str, Any]:
    cases = _cases(n, seed)
    reasoner = api.prepare(None)
    chunks = [cases[i:i + CHUNK] for i in range(0, n, CHUNK)]

    def run(part: list[Case]) -> None:
        for case in part:
            reasoner.evaluate(case)

    run(cases)  # warm up: first-call costs (imports, caches) are not per case
    # The C calls of each chunk, recorded once.
    recorded: list[list[Op]] = []
    for part in chunks:
        rec = _Recorder()
        with rec.installed():
            run(part)
        recorded.append(rec.ops)
    calls = Counter(name for ops in recorded for _, _, name in ops)

    load_start = _loadavg()
    evaluate: list[float] = []
    in_context: list[float] = []
    replayed: list[float] = []
    facts: list[float] = []
    gc.collect()
    for _ in range(rounds):
        e = c = r = f = 0.0
        for part, ops in zip(chunks, recorded, strict=True):
            e += _timed(partial(run, part))
            timer = _InContext()
            with timer.installed():
                run(part)
            c += timer.corrected()
            r += _timed(partial(_replay, ops))
            f += _timed(partial(_facts, reasoner, part))
        evaluate.append(e)
        in_context.append(c)
        replayed.append(r)
        facts.append(f)
    # What the issue keeps as it is, timed on its own on the same cases: the
    # policy (conflict resolution, ladder moves, prescriptions), replayed
    # from the calls evaluate made, and the firing records, rebuilt.
    policy_calls: list[list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]]] = []
    firings: list[list[list[Firing]]] = []
    for part in chunks:
        calls_made: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = []
        with _policy_recorded(calls_made):
            firings.append([reasoner.evaluate(case).firings for case in part])
        policy_calls.append(calls_made)
    policy_s: list[float] = []
    records_s: list[float] = []
    for _ in range(rounds):
        pt = rt = 0.0
        for calls_made, case_firings in zip(policy_calls, firings, strict=True):
            pt += _timed(partial(_replay_policy, calls_made))
            rt += _timed(partial(_rebuild_records, case_firings))
        policy_s.append(pt)
        records_s.append(rt)
    spent: dict[str, float] = {}
    clock_cost = _InContext().clock_cost
    for ops in recorded:
        _replay_by_function(ops, spent, clock_cost)
    c_share = statistics.median(in_context) / statistics.median(replayed)

    per_case = 1e6 / n
    evaluate_us = statistics.median(evaluate) * per_case
    c_us = statistics.median(in_context) * per_case
    replay_us = statistics.median(replayed) * per_case
    facts_us = statistics.median(facts) * per_case
    ratio = statistics.median(e / c for e, c in zip(evaluate, in_context, strict=True))
    ratio_replay = statistics.median(e / r for e, r in zip(evaluate, replayed, strict=True))
    policy_us = statistics.median(policy_s) * per_case
    records_us = statistics.median(records_s) * per_case
    # The firing records are built when first asked for (by the decision
    # document), not inside evaluate: they are timed, but not part of it.
    kept_us = facts_us + policy_us
    return {
        "benchmark": "engine_overhead",
        "python": platform.python_version(),
        "durable_rules": _durable_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "loadavg_start": load_start,
        "loadavg_end": _loadavg(),
        "cases": n,
        "seed": seed,
        "rounds": rounds,
        "evaluate_us": round(evaluate_us, 1),
        "c_us": round(c_us, 1),
        "ratio": round(ratio, 3),
        "c_replayed_us": round(replay_us, 1),
        "ratio_to_replay": round(ratio_replay, 3),
        "c_in_context_over_replay": round(c_share, 3),
        "target": TARGET,
        "met": ratio <= TARGET,
        "facts_us": round(facts_us, 1),
        "python_other_us": round(evaluate_us - c_us - facts_us, 1),
        "ratio_without_facts": round((evaluate_us - facts_us) / c_us, 3),
        "policy_us": round(policy_us, 1),
        "firing_records_us": round(records_us, 1),
        "driver_us": round(evaluate_us - c_us - kept_us, 1),
        # evaluate if the driver itself (encoding, parsing, dispatch) cost
        # nothing: C plus what the issue keeps exactly as it is.
        "floor_ratio": round((c_us + kept_us) / c_us, 3),
        "c_calls_per_case": {k: round(v / n, 2) for k, v in sorted(calls.items())},
        "c_us_per_case_by_function": {
            k: round(v * per_case, 1) for k, v in sorted(spent.items())},
        "rounds_evaluate_us": [round(x * per_case, 1) for x in evaluate],
        "rounds_c_us": [round(x * per_case, 1) for x in in_context],
        "rounds_c_replayed_us": [round(x * per_case, 1) for x in replayed],
    }


def _durable_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("durable-rules")
    except PackageNotFoundError:
        return "unknown"


def markdown(r: dict[str, Any]) -> str:
    verdict = "**met**" if r["met"] else "**missed**"
    by = r["c_us_per_case_by_function"]
    calls = ", ".join(f"`{k}` {v:g} ({by.get(k, 0):,.0f} µs)"
                      for k, v in r["c_calls_per_case"].items())
    load = " ".join(map(str, r["loadavg_start"])), " ".join(map(str, r["loadavg_end"]))
    return "\n".join([
        "## Engine overhead: `Reasoner.evaluate` against durable-rules' C engine",
        "",
        "<!-- Generated by benchmarks/engine_overhead.py; do not edit by hand. -->",
        "",
        f"Measured in one run by `python benchmarks/engine_overhead.py --cases {r['cases']} "
        f"--rounds {r['rounds']}` (Python {r['python']}, durable-rules "
        f"{r['durable_rules']}, {r['cpus']} CPUs; load average {load[0]} at start, "
        f"{load[1]} at end). CPU time per case, medians of the rounds. How each figure "
        "is taken is described at the top of the script.",
        "",
        "| per case | µs |",
        "|---|---:|",
        f"| `Reasoner.evaluate` (facts, rulesets, policy) | "
        f"{r['evaluate_us']:,.0f} |",
        f"| inside durable-rules' C extension, during `evaluate` | {r['c_us']:,.0f} |",
        f"| the same C calls replayed alone (warm caches) | {r['c_replayed_us']:,.0f} |",
        f"| computing the facts (Python) | {r['facts_us']:,.0f} |",
        f"| the rest: JSON, policy, calls (Python) | "
        f"{r['python_other_us']:,.0f} |",
        f"| of which the policy (conflicts, ladder moves, prescriptions), timed alone | "
        f"{r['policy_us']:,.0f} |",
        f"| of which the driver proper (fact JSON, action parsing, dispatch, calls) | "
        f"{r['driver_us']:,.0f} |",
        f"| not in `evaluate`: the firing records (`Firing`, `Binding`), built when the "
        f"document first asks, timed alone | {r['firing_records_us']:,.0f} |",
        "",
        f"If the driver proper cost nothing, `evaluate` would be C plus the facts and the "
        f"policy: **{r['floor_ratio']:.2f}×** C.",
        "",
        f"Ratio `evaluate` / C: **{r['ratio']:.2f}×** (target ≤ {r['target']}×: {verdict}); "
        f"without computing the facts {r['ratio_without_facts']:.2f}×. "
        f"Against the replayed C calls: {r['ratio_to_replay']:.2f}×.",
        "",
        f"C calls per case (and their replayed C time): {calls}.",
        "",
    ])


START = "<!-- engine_overhead: start -->"
END = "<!-- engine_overhead: end -->"


def _write_section(page: Path, section: str) -> None:
    """Replace the generated section of ``page`` (between the markers),
    keeping the hand-written text around it; a new page gets a title."""
    block = f"{START}\n{section}{END}\n\n"
    text = page.read_text(encoding="utf-8") if page.exists() else ""
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + block + rest.split(END, 1)[1].lstrip("\n")
    else:
        text = "# Engine overhead\n\n" + block
    page.write_text(text, encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--cases", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=HERE / "out" / "engine_overhead.json")
    parser.add_argument("--md", type=Path, default=ROOT / "docs" / "performance-engine.md")
    args = parser.parse_args(argv)
    result = measure(args.cases, args.rounds, args.seed)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    _write_section(args.md, markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
