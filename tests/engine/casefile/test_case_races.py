"""Two writers on one case file never lose each other's entries (issue 27
item 2): every pair of log, assess, next --accept and import --into, each in
its own process, races on one file; every entry a command acknowledged (exit
0) must be in the file afterwards, and every command that did not succeed
must have said why in one clean line. (With the lock and the sha256 check
switched off, log + import and import + import lose entries within these
few rounds.)"""

from __future__ import annotations

import csv
import itertools
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from calfrehab.engine import api

TODAY = api.clinic_today()
KINDS = ("log", "assess", "accept", "import")
ROUNDS = 6

# Each worker is one process running its command ROUNDS times in a row
# (through the CLI's main, in-process, so only one interpreter start each).
WORKER = r"""
import sys
from click.testing import CliRunner
from calfrehab.cli.main import cli

kind, case, first, rounds, log_day, work = sys.argv[1:7]
runner = CliRunner()
for i in range(int(first), int(first) + int(rounds)):
    if kind == "log":
        args = ["log", case, "--date", log_day, "--straight-knee-done", f"15,15,{i}",
                "--straight-knee-pain", "1", "--no-input"]
    elif kind == "assess":
        args = ["assess", case, "--date", log_day, "--visa-a", str(i), "--no-input"]
    elif kind == "accept":
        args = ["next", case, "--accept", "--clinician", f"worker {i}"]
    else:
        args = ["import", f"{work}/import-{i}.csv", "--into", case.rpartition("/")[0]]
    result = runner.invoke(cli, args)
    text = " ".join(result.output.split())
    print(("ACK" if result.exit_code == 0 else "NAK"), kind, i, text[-400:], flush=True)
"""

# What a writer that lost the race may say: it waited too long, or the file
# changed under it (so it wrote nothing), or its decision is now stale.
CLEAN_REFUSALS = ("changed since it was read", "another calfrehab command has been writing",
                  "was made for another version of")


def _day(back: int) -> str:
    return (TODAY - timedelta(days=back)).isoformat()


def _case(folder: Path) -> Path:
    case = folder / "ANA-01.json"
    data: dict[str, Any] = {
        "schema_version": 1, "case_id": "ANA-01", "review_date": _day(40),
        "patient": {"age_years": 41, "body_mass_kg": 70},
        "condition": {"kind": "achilles_midportion", "side": "left"},
        "red_flags": [],
        "program": {"straight_knee": {"exercise": "two_leg_heel_raise", "load_kg": 0,
                                      "sets": 3, "reps": 15}},
        "sessions": [], "assessments": [],
    }
    case.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return case


def _import_files(work: Path, first: int) -> None:
    for i in range(first, first + ROUNDS):
        with open(work / f"import-{i}.csv", "w", newline="", encoding="utf-8") as fh:
            out = csv.writer(fh)
            out.writerow(["case_id", "date", "exercise", "sets_done", "pain_during"])
            out.writerow(["ANA-01", _day(30 - i), "two_leg_heel_raise", "15/15/15", "2"])


@pytest.mark.parametrize(("one", "two"), list(itertools.combinations_with_replacement(KINDS, 2)))
def test_two_writers_lose_nothing(tmp_path: Path, one: str, two: str) -> None:
    folder = tmp_path / "cases"
    folder.mkdir()
    case = _case(folder)
    trail = tmp_path / "audit.sqlite3"
    starts = {0: 1, 1: 1 + ROUNDS}  # disjoint values per worker
    for n in (0, 1):
        _import_files(tmp_path, starts[n])
    env = {**os.environ, "CALFREHAB_AUDIT": str(trail)}
    procs = [subprocess.Popen(
        [sys.executable, "-c", WORKER, kind, str(case), str(starts[n]), str(ROUNDS), _day(1),
         str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for n, kind in enumerate((one, two))]
    lines: list[list[str]] = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0 and "Traceback" not in out + err, out + err
        lines += [line.split(" ", 3) for line in out.splitlines() if line]
    acked = [(kind, int(i)) for status, kind, i, _ in lines if status == "ACK"]
    for status, kind, number, text in lines:
        if status == "NAK":
            assert any(r in text for r in CLEAN_REFUSALS), (kind, number, text)
    assert acked, lines  # at least something went through

    data = json.loads(case.read_text(encoding="utf-8"))
    sessions = data["sessions"]
    for kind, i in acked:
        if kind == "log":
            assert any(s["date"] == _day(1) and s["exercises"][0]["sets_completed"][2] == i
                       for s in sessions), (kind, i)
        elif kind == "assess":
            assert any(a.get("visa_a") == i for a in data["assessments"]), (kind, i)
        elif kind == "import":
            assert any(s["date"] == _day(30 - i) for s in sessions), (kind, i)
    accepts = sum(kind == "accept" for kind, _ in acked)
    if accepts:
        with api.open_trail(trail) as t:
            assert len(t.entries(kind="accepted")) == accepts


def test_two_imports_of_a_new_case_both_land(tmp_path: Path) -> None:
    """Two imports that each create the same new case: one creates it, the
    other waits and adds to it (both said "new case" before, and one file
    replaced the other)."""
    into = tmp_path / "cases"
    header = "case_id,date,exercise,sets_done,pain_during,age_years,condition,side\n"
    for n in (1, 2):
        (tmp_path / f"new-{n}.csv").write_text(
            header + f"NEW-1,{_day(n)},two_leg_heel_raise,15/15/15,2,40,"
            "achilles_midportion,left\n", encoding="utf-8")
    code = ("import sys; from calfrehab.cli.main import cli; "
            "cli(['import', sys.argv[1], '--into', sys.argv[2]])")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / f"new-{n}.csv"),
                               str(into)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) for n in (1, 2)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    data = json.loads((into / "NEW-1.json").read_text(encoding="utf-8"))
    assert sorted(s["date"] for s in data["sessions"]) == [_day(2), _day(1)]
