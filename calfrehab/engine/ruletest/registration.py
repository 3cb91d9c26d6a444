"""Register a rule base with durable-rules, and decide one probe case, in a
child process under a time limit: what ``calfrehab rules check`` runs after
compiling.

Compiling checks what calfrehab knows about the rule language and the
engine's measured limits (:mod:`calfrehab.engine.knowledge.durable_limits`).
This goes further and asks the engine itself: each ruleset is created with
durable-rules and a minimal case is decided with it, in a separate process,
so that a rule base the engine refuses is reported with its error and the
rule that triggers it, and one the engine would hang on is stopped after
the time limit instead of hanging the check. The child reports as it goes
(one JSON object a line on standard output), so after a timeout the parent
knows which step hung.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from calfrehab.engine.errors import RuleProblem

# durable-rules' error codes (rules.h) a rule base can trigger, in words.
DURABLE_ERRORS = {
    101: "out of memory",
    103: "an identifier is too long",
    105: "an unexpected name",
    106: "too many rules in one ruleset",
    107: "too many `exists` tests in one rule",
    108: "too many rules share one fact test",
    109: "a rule without a qualifier",
    113: "an expression is too long",
}

# The case decided to check that a registered rule base also runs: the
# smallest valid case file (no sessions, nothing to progress).
PROBE_CASE: dict[str, Any] = {
    "schema_version": 1,
    "case_id": "rules-check-probe",
    "review_date": "2026-01-01",
    "patient": {"age_years": 40},
    "condition": {"kind": "none", "side": "left"},
    "program": {"straight_knee": {"exercise": "two_leg_heel_raise", "sets": 3, "reps": 15}},
}


@dataclass(frozen=True)
class RegistrationReport:
    ok: bool
    problems: list[RuleProblem]
    seconds_allowed: int


def check_registration(rules_dir: Path, *, timeout_s: int) -> RegistrationReport:
    """Register ``rules_dir`` with durable-rules and decide the probe case in
    a child process, allowing ``timeout_s`` seconds."""
    cmd = [sys.executable, "-m", "calfrehab.engine.ruletest.registration", str(rules_dir)]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout_s, env=env,
                              stdin=subprocess.DEVNULL, check=False)
        out, err, code = proc.stdout, proc.stderr, proc.returncode
        timed_out = False
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout or b""
        err = exc.stderr or b""
        code, timed_out = None, True
    events = _events(out)
    return RegistrationReport(
        ok=not timed_out and code == 0 and bool(events) and events[-1].get("step") == "done",
        problems=_problems(events, timed_out, timeout_s, code, err),
        seconds_allowed=timeout_s,
    )


def _events(out: bytes) -> list[dict[str, Any]]:
    events = []
    for line in out.decode("utf-8", "replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


def _problems(events: list[dict[str, Any]], timed_out: bool, timeout_s: int,
              code: int | None, err: bytes) -> list[RuleProblem]:
    problems = [_as_problem(e) for e in events if e.get("step") == "refused"]
    if problems:
        return problems
    last = events[-1] if events else {}
    if timed_out:
        doing = {"register": f"registering ruleset {last.get('ruleset')} "
                             f"({last.get('rules')} engine rules)",
                 "decide": "deciding a probe case"}.get(str(last.get("step")), "starting")
        return [RuleProblem("(rule base)", (
            f"durable-rules did not finish {doing} within {timeout_s} s; the rule base "
            "is too large for the engine (see docs/rule-language.md, Engine limits)"))]
    if code != 0 or last.get("step") != "done":
        tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
        return [RuleProblem("(rule base)",
                            f"checking with durable-rules failed (exit {code}): {tail[0]}")]
    return []


def _as_problem(event: dict[str, Any]) -> RuleProblem:
    return RuleProblem(str(event.get("file") or "(rule base)"), str(event.get("message")),
                       event.get("line"), event.get("rule_id"))


# ------------------------------------------------------------------ the child


def _error_code(exc: BaseException) -> int | None:
    text = str(exc)
    marker = "error code:"
    if marker in text:
        tail = text.split(marker, 1)[1].strip().split()[0].rstrip(".,")
        if tail.isdigit():
            return int(tail)
    return None


def _explain(exc: BaseException) -> str:
    code = _error_code(exc)
    words = DURABLE_ERRORS.get(code or -1)
    return f"durable-rules refuses it: {exc}" + (f" ({words})" if words else "")


def _child(rules_dir: Path, emit: Callable[[dict[str, Any]], None]) -> int:
    # Imported here: the parent process needs none of this.
    import durable_rules_engine as durable

    from calfrehab.engine import pipeline
    from calfrehab.engine.errors import CalfrehabError, RuleError
    from calfrehab.engine.inference.driver import Reasoner

    try:
        compiled = pipeline.compile_rules(rules_dir)
    except RuleError as exc:
        for p in exc.problems:
            emit({"step": "refused", "file": p.file, "line": p.line, "rule_id": p.rule_id,
                  "message": p.message})
        return 1
    rulesets = compiled.rulesets("rules_check")
    for name, rules in rulesets.items():
        emit({"step": "register", "ruleset": name, "rules": len(rules)})
        definition = {r: {k: v for k, v in body.items() if k != "run"}
                      for r, body in rules.items()}
        try:
            durable.create_ruleset(name + "_whole", json.dumps(definition))
        except Exception as exc:
            _pin(durable, compiled, name, rules, exc, emit)
            return 1
    emit({"step": "decide"})
    try:
        reasoner = Reasoner(compiled)
        pipeline.decide_document(PROBE_CASE, reasoner, "probe case")
    except CalfrehabError:
        # A rule base may not decide this particular case (a gap for a
        # condition it does not cover): that is for its case tables, not
        # for the engine check.
        pass
    emit({"step": "done"})
    return 0


def _pin(durable: Any, compiled: Any, name: str, rules: dict[str, Any], exc: BaseException,
         emit: Callable[[dict[str, Any]], None]) -> None:
    """Name the rule the engine refuses: each rule alone first; if every
    one registers alone, the ruleset as a whole is over a limit."""
    for n, (key, body) in enumerate(rules.items()):
        instance_key = key.split("#", 1)[0]
        inst = compiled.instances.get(instance_key)
        if inst is None:
            continue
        alone = {key: {k: v for k, v in body.items() if k != "run"}}
        try:
            durable.create_ruleset(f"{name}_alone_{n}", json.dumps(alone))
        except Exception as single:
            emit({"step": "refused", "file": inst.file, "line": inst.line,
                  "rule_id": inst.rule.id, "message": _explain(single)})
            return
    emit({"step": "refused", "file": "(rule base)", "line": None, "rule_id": None,
          "message": f"{_explain(exc)}, for ruleset {name} of {len(rules)} engine rules as a "
                     "whole (each rule registers alone); see docs/rule-language.md, "
                     "Engine limits"})


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv

    def emit(event: dict[str, Any]) -> None:
        print(json.dumps(event), flush=True)

    return _child(Path(args[0]), emit)


if __name__ == "__main__":
    raise SystemExit(main())
