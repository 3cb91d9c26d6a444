"""Shared test helpers: where the example folders are, building rule dirs."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from calfrehab.engine.casefile import docpath
from calfrehab.engine.knowledge.loader import default_rules_dir

# The test tree is in folders by layer (tests/README.md); every test finds
# the repository, the examples and the data folders from here, not from its
# own depth, so a file can move between folders without its paths breaking.
TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
EXAMPLES = REPO / "examples"
# The shared contract (spec and examples) lives beside the checkout, in
# ../shared; CALFREHAB_SHARED points elsewhere (a worktree, a CI cache).
SHARED = Path(os.environ.get("CALFREHAB_SHARED") or REPO.parent / "shared")
SHARED_EXAMPLES = SHARED / "examples"


def in_ci() -> bool:
    """CI sets CI=true (GitHub, GitLab, most others)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


# A byte-for-byte copy of the contract's examples, for a clone on its own
# (tests/contract/README.md); tests/contract/test_contract_copy.py keeps it equal.
CONTRACT_COPY = TESTS / "contract" / "examples"


def shared_examples() -> Path:
    """The shared contract's example folder: ``../shared/examples`` when it
    is beside the checkout, else the checked copy in tests/contract/, so a
    clone on its own tests the contract too, with nothing skipped."""
    return SHARED_EXAMPLES if SHARED_EXAMPLES.is_dir() else CONTRACT_COPY


def valid_example_case_files() -> list[Path]:
    """Every example case file that is meant to be decided: this
    repository's examples and the shared contract's, not the invalid ones
    and not the other documents (a Bundle, a hook request) among them."""
    out = []
    for folder in (EXAMPLES, shared_examples()):
        for path in sorted(folder.glob("*.json")):
            doc = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(doc, dict) and "patient" in doc and "invalid" not in path.name:
                out.append(path)
    return out


def rules_dir_with(tmp: Path, rule_files: dict[str, str], keep_shipped_rules: bool = False) -> Path:
    """A rules directory with the shipped manifest, sources, ladder and
    red-flag rules (a rule base must refer every red flag), and the given
    rule files (name -> YAML text)."""
    target = tmp / "rules"
    shipped = default_rules_dir()
    target.mkdir()
    for name in ("rulebase.yaml", "sources.yaml", "ladder.yaml", "red-flags.yaml"):
        shutil.copy(shipped / name, target / name)
    if keep_shipped_rules:
        for path in shipped.glob("*.yaml"):
            shutil.copy(path, target / path.name)
    for name, text in rule_files.items():
        (target / name).write_text(text, encoding="utf-8")
    return target


def set_path(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``doc`` with ``a.b[2].c`` set to ``value``."""
    out = copy.deepcopy(doc)
    docpath.set_path(out, path, value)
    return out


def probe_rules(count: int, *, distinct: bool) -> str:
    """A rule file of ``count`` rules that each test patient.age_years: with
    distinct values (``distinct``) or all the same one, the two shapes that
    reach durable-rules' limits (docs/rule-language.md, Engine limits)."""
    lines = ["rules:"]
    for i in range(count):
        value = 200 + i if distinct else 5
        lines += [
            f"  - id: probe-{i}",
            "    title: An engine-limit probe",
            "    rationale: A generated rule that probes what the engine can take.",
            "    sources: [cook_purdam2009]",
            "    applies_to: {tracks: [straight_knee]}",
            "    priority: 700",
            f'    when: {{fact: patient.age_years, op: "==", value: {value}}}',
            "    then: {assert: track.blocked}",
            '    reason: "probe"',
        ]
    return "\n".join(lines) + "\n"


def python_output(code: str, env: dict[str, str] | None = None) -> str:
    """What ``code`` prints, run by this interpreter in a fresh process (a
    clean import state: what a command really loads). It must succeed; its
    standard error is in the failure."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def next_then(case: Path, after: str, *, before: str = "") -> str:
    """Python code for :func:`python_output`: ``before``, then ``calfrehab
    next CASE --no-record`` through the command line's own entry (it must
    succeed), then ``after``, which prints what the test reads."""
    return (
        f"{before}"
        "from calfrehab.cli.main import cli\n"
        "try:\n"
        f"    cli(['next', {str(case)!r}, '--no-record'], prog_name='calfrehab')\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        f"{after}"
    )


def free_port() -> int:
    """A loopback port free at the time of asking."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def served(args: list[str], cwd: Path, log: Path) -> Iterator[str]:
    """Run ``calfrehab serve ARGS --port P`` as a real process on a free
    loopback port, wait until discovery answers, yield its base URL, and stop
    it afterwards. Its output goes to ``log``, quoted when it fails to start."""
    with running("serve", args, "/cds-services", cwd, log) as base:
        yield base


@contextlib.contextmanager
def running(command: str, args: list[str], probe: str, cwd: Path, log: Path,
            env: dict[str, str] | None = None) -> Iterator[str]:
    """``calfrehab COMMAND ARGS --port P`` (serve or app) as a real process
    on a free loopback port; yields its base URL once ``probe`` answers and
    stops it afterwards."""
    import httpx  # the services' test dependency; only their tests need it

    port = free_port()
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from calfrehab.cli.main import cli; cli()", command,
             *args, "--port", str(port)], stdout=err, stderr=err, cwd=cwd, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"calfrehab {command} exited: {log.read_text()}")
            try:
                httpx.get(base + probe, timeout=5)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    pytest.fail(f"calfrehab {command} did not start: {log.read_text()}")
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
