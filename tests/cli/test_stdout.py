"""A result that cannot be written to standard output (a full disk, a
failing device: /dev/full here) is one clean line and status 1, buffered or
not, and a closed pipe still ends the usual way (calfrehab/cli/stdout.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import EXAMPLES

EXAMPLE = EXAMPLES / "plantar-single-leg-to-weighted.json"
_SCRIPT = "import sys; from calfrehab.cli.main import cli; sys.argv[0] = 'calfrehab'; cli()"


def _to_full(args: list[str], unbuffered: bool, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    with open("/dev/full", "w", encoding="utf-8") as full:
        return subprocess.run([sys.executable, "-c", _SCRIPT, *args], stdout=full,
                              stderr=subprocess.PIPE, text=True, check=False, cwd=cwd,
                              env=env)


@pytest.mark.parametrize("unbuffered", [False, True])
@pytest.mark.parametrize("args", [
    ["next", str(EXAMPLE), "--no-record"],
    ["next", str(EXAMPLE), "--no-record", "--json"],
    ["explain", str(EXAMPLE)],
    ["explain", str(EXAMPLE), "--json"],
    # validate and schema are quick commands too; they printed a traceback.
    ["validate", str(EXAMPLE)],
    ["validate", str(EXAMPLE), "--json"],
    ["schema"],
])
def test_a_full_standard_output_is_one_clean_line(args: list[str], unbuffered: bool,
                                                  tmp_path: Path) -> None:
    done = _to_full(args, unbuffered, tmp_path)
    # Before: a traceback, then the interpreter's failed flush at exit
    # (status 120 when buffered).
    assert done.stderr == "error: cannot write standard output: No space left on device\n"
    assert done.returncode == 1


@pytest.mark.parametrize("unbuffered", [False, True])
@pytest.mark.parametrize("args", [
    # Every command prints through cli/stdout.say: these printed a traceback.
    ["config"],
    ["rules", "list"],
    ["simulate", str(EXAMPLE), "--weeks", "2"],
    ["audit", "verify", "--audit", "{trail}"],
    ["audit", "list", "--audit", "{trail}"],
])
def test_other_commands_say_so_in_one_line_too(args: list[str], unbuffered: bool,
                                               tmp_path: Path) -> None:
    trail = tmp_path / "trail.sqlite3"
    recorded = subprocess.run([sys.executable, "-c", _SCRIPT, "next", str(EXAMPLE),
                               "--audit", str(trail)], capture_output=True, text=True,
                              check=False, cwd=tmp_path)
    assert recorded.returncode == 0, recorded.stderr
    done = _to_full([a.format(trail=trail) for a in args], unbuffered, tmp_path)
    assert done.stderr == "error: cannot write standard output: No space left on device\n"
    assert done.returncode == 1


def test_a_closed_pipe_is_not_reported_as_a_full_disk(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    reader, writer = os.pipe()
    os.close(reader)
    try:
        done = subprocess.run([sys.executable, "-c", _SCRIPT, "next", str(EXAMPLE),
                               "--no-record"], stdout=writer, stderr=subprocess.PIPE,
                              text=True, check=False, cwd=tmp_path, env=env)
    finally:
        os.close(writer)
    assert "cannot write standard output" not in done.stderr
    assert done.returncode != 0


@pytest.mark.parametrize("unbuffered", [False, True])
@pytest.mark.parametrize("args", [
    # click's own help and version, printed before any command runs: these
    # ended in a traceback (status 1 by accident) where commands said one line.
    ["--help"],
    ["--version"],
    ["next", "--help"],
    ["audit", "list", "--help"],
])
def test_click_help_and_version_say_so_in_one_line_too(args: list[str], unbuffered: bool,
                                                       tmp_path: Path) -> None:
    done = _to_full(args, unbuffered, tmp_path)
    assert done.stderr == "error: cannot write standard output: No space left on device\n"
    assert done.returncode == 1


def test_help_to_a_closed_pipe_is_not_reported_as_a_full_disk(tmp_path: Path) -> None:
    reader, writer = os.pipe()
    os.close(reader)
    try:
        done = subprocess.run([sys.executable, "-c", _SCRIPT, "--help"], stdout=writer,
                              stderr=subprocess.PIPE, text=True, check=False, cwd=tmp_path)
    finally:
        os.close(writer)
    assert "cannot write standard output" not in done.stderr
