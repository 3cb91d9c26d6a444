"""The command line's quick exit (calfrehab/cli/quickexit.py): a finished
`next` leaves with os._exit, and loses nothing by it - its output, its exit
status, its trail entry - while everyone else keeps the usual exit."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import EXAMPLES

from calfrehab.cli import quickexit
from calfrehab.cli.main import cli

EXAMPLE = EXAMPLES / "plantar-single-leg-to-weighted.json"

# A process that runs the command line as the console script does (cli()
# with no arguments, sys.argv naming the command), reporting on standard
# error whether it left through os._exit.
_AS_SCRIPT = """\
import os, sys
_exit = os._exit
def spy(code):
    sys.stderr.write(f"QUICK {code}\\n"); sys.stderr.flush(); _exit(code)
os._exit = spy
sys.argv = ["calfrehab", *sys.argv[1:]]
from calfrehab.cli.main import cli
cli()
"""

# The same command line, embedded: arguments passed, so the usual exit.
_EMBEDDED = """\
import sys
from calfrehab.cli.main import cli
cli(sys.argv[1:], prog_name="calfrehab")
"""


def _run(code: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                          text=True, check=False, cwd=cwd)


def test_next_leaves_quickly_and_prints_the_same(tmp_path: Path) -> None:
    quick = _run(_AS_SCRIPT, "next", str(EXAMPLE), "--no-record", "--json", cwd=tmp_path)
    usual = _run(_EMBEDDED, "next", str(EXAMPLE), "--no-record", "--json", cwd=tmp_path)
    assert quick.returncode == usual.returncode == 0
    assert quick.stderr == "QUICK 0\n"
    assert "QUICK" not in usual.stderr
    # The decision document whole (its id aside), last byte included.
    strip = [line for line in quick.stdout.splitlines(keepends=True)
             if '"decision_id"' not in line]
    assert strip == [line for line in usual.stdout.splitlines(keepends=True)
                     if '"decision_id"' not in line]
    assert quick.stdout.endswith("}\n")


def test_a_recorded_decision_is_in_the_trail(tmp_path: Path) -> None:
    trail = tmp_path / "trail.sqlite3"
    for n in (1, 2):
        done = _run(_AS_SCRIPT, "next", str(EXAMPLE), "--audit", str(trail), cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert done.stderr.endswith("QUICK 0\n")
        # The connection was closed before the exit: SQLite removes the
        # write-ahead log when the last connection closes.
        assert sorted(p.name for p in tmp_path.iterdir()) == ["trail.sqlite3"]
        # Each run's entry is there, read by a process that exits as usual.
        listed = _run(_EMBEDDED, "audit", "list", "--audit", str(trail), cwd=tmp_path)
        assert listed.returncode == 0, listed.stderr
        rows = [line.split()[0] for line in listed.stdout.splitlines()
                if line[:4].strip().isdigit()]
        assert rows == [str(k) for k in range(1, n + 1)]
        # (a reader's read-only connection may leave the log behind)
        for log in tmp_path.glob("trail.sqlite3-*"):
            log.unlink()
    verified = _run(_EMBEDDED, "audit", "verify", "--audit", str(trail), cwd=tmp_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith("ok: 2 entries, chain intact")


def test_the_exit_status_and_message_of_a_bad_case_are_kept(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema_version": 1, "case_id": ""}', encoding="utf-8")
    quick = _run(_AS_SCRIPT, "next", str(bad), "--no-record", cwd=tmp_path)
    usual = _run(_EMBEDDED, "next", str(bad), "--no-record", cwd=tmp_path)
    assert quick.returncode == usual.returncode == 1
    assert quick.stderr == usual.stderr + "QUICK 1\n"
    assert quick.stdout == usual.stdout


def test_a_usage_error_keeps_status_2(tmp_path: Path) -> None:
    quick = _run(_AS_SCRIPT, "next", cwd=tmp_path)
    usual = _run(_EMBEDDED, "next", cwd=tmp_path)
    assert quick.returncode == usual.returncode == 2
    assert quick.stderr == usual.stderr + "QUICK 2\n"


def test_atexit_handlers_still_run(tmp_path: Path) -> None:
    code = ("import atexit; atexit.register(print, 'HANDLER RAN')\n" + _AS_SCRIPT)
    done = _run(code, "next", str(EXAMPLE), "--no-record", cwd=tmp_path)
    assert done.returncode == 0
    assert done.stdout.endswith("HANDLER RAN\n")
    assert done.stderr == "QUICK 0\n"


def test_other_commands_exit_as_usual(tmp_path: Path) -> None:
    done = _run(_AS_SCRIPT, "rules", "--help", cwd=tmp_path)
    assert done.returncode == 0
    assert "QUICK" not in done.stderr


def test_cli_runner_is_not_ended() -> None:
    # This very process runs it: had it left with os._exit, pytest would
    # have stopped here.
    result = CliRunner().invoke(cli, ["next", str(EXAMPLE), "--no-record"])
    assert result.exit_code == 0
    assert "Decision support" in result.output


@pytest.mark.parametrize("command, code", [("batch", 0), ("serve", 0), (None, 0),
                                           ("next", "a message")])
def test_leave_declines(command: str | None, code: object) -> None:
    # Returning (rather than ending pytest) is the answer.
    assert quickexit.leave(code, command) is False


def test_leave_declines_while_another_thread_runs() -> None:
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait)
    worker.start()
    try:
        assert quickexit.leave(0, "next") is False
    finally:
        stop.set()
        worker.join()
