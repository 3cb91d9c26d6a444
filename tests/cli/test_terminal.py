"""The entry commands at a real terminal: a pseudo-terminal runs
``calfrehab new`` and ``calfrehab log`` as a physiotherapist would type
them (CliRunner, used elsewhere, feeds answers without a terminal)."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

START = "from calfrehab.cli.main import cli; cli(prog_name='calfrehab')"


class Terminal:
    """One command on a pseudo-terminal: wait for a prompt, type a line."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.seen = ""

    def expect(self, text: str, timeout: float = 60.0) -> None:
        end = time.monotonic() + timeout
        while text not in self.seen:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {text!r} on the terminal; it shows:\n{self.seen}")
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                try:
                    data = os.read(self.fd, 4096)
                except OSError:  # the command ended
                    data = b""
                if not data:
                    raise AssertionError(f"ended before {text!r}; it shows:\n{self.seen}")
                self.seen += data.decode("utf-8", errors="replace")

    def answer(self, prompt: str, line: str) -> None:
        self.expect(prompt)
        # What is shown from here on belongs to the next prompt.
        self.seen = self.seen[self.seen.index(prompt) + len(prompt):]
        os.write(self.fd, line.encode() + b"\r")

    def rest(self) -> str:
        while True:
            ready, _, _ = select.select([self.fd], [], [], 30)
            if not ready:
                return self.seen
            try:
                data = os.read(self.fd, 4096)
            except OSError:
                return self.seen
            if not data:
                return self.seen
            self.seen += data.decode("utf-8", errors="replace")


@contextmanager
def terminal(*args: str, cwd: Path, rc: int = 0) -> Iterator[Terminal]:
    # subprocess, not pty.fork(): the test process has threads, and Python
    # code run between a fork and an exec may deadlock on a lock another
    # thread held; subprocess forks and execs in C.
    main, replica = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-c", START, *args], stdin=replica, stdout=replica, stderr=replica,
        cwd=cwd, env={**os.environ, "NO_COLOR": "1"}, start_new_session=True)
    os.close(replica)
    try:
        yield Terminal(main)
    finally:
        try:
            assert proc.wait(60) == rc
        finally:
            os.close(main)


def test_new_and_log_typed_at_a_terminal(tmp_path: Path) -> None:
    case = tmp_path / "ana.json"
    with terminal("new", str(case), cwd=tmp_path) as t:
        t.answer("Case id [ana]: ", "ANA-01")
        t.answer("Review date (YYYY-MM-DD) [", "2026-11-20")
        t.answer("Age, years: ", "forty")  # refused as typed, asked again
        t.expect("not a whole number")
        t.answer("Age, years: ", "41")
        t.answer("Body mass, kg (blank if not known): ", "70")
        t.answer("Sex (blank if not given)", "")
        t.answer("[running]: ", "")  # the goal, by its default
        t.answer("achilles_rupture, calf_strain, none: ", "achilles_midportion")
        t.answer("left, right, both: ", "left")
        t.answer("[moderate]: ", "")
        t.answer("Onset date (YYYY-MM-DD, blank if not known): ", "")
        t.answer("Red flags found", "")
        t.answer("[two_leg_heel_raise]: ", "")  # the rules' starting rung
        t.answer("sets [3]: ", "")
        t.answer("[15]: ", "")
        t.answer("external load, kg [0]: ", "")
        t.answer("seated_calf_raise [none]: ", "")
        t.answer("return_to_running [none]: ", "")
        shown = t.rest()
    assert "new case ANA-01: achilles_midportion, left" in shown
    doc = json.loads(case.read_text(encoding="utf-8"))
    assert (doc["case_id"], doc["review_date"]) == ("ANA-01", "2026-11-20")
    assert doc["patient"] == {"age_years": 41, "body_mass_kg": 70, "goal": "running"}
    assert doc["program"]["straight_knee"] == {
        "exercise": "two_leg_heel_raise", "load_kg": 0, "sets": 3, "reps": 15}
    assert case.stat().st_mode & 0o777 == 0o600

    with terminal("log", str(case), cwd=tmp_path) as t:
        t.answer("Session date (YYYY-MM-DD) [", "2026-11-19")
        t.answer("done per set (or skip) [15, 15, 15]: ", "")
        t.answer("worst pain during (0–10): ", "11")  # out of range: asked again
        t.expect("from 0 to 10")
        t.answer("worst pain during (0–10): ", "2")
        shown = t.rest()
    assert "session 2026-11-19: two_leg_heel_raise 15/15/15, pain 2/10" in shown
    session = json.loads(case.read_text(encoding="utf-8"))["sessions"][-1]
    assert session["date"] == "2026-11-19"
    assert session["exercises"] == [{"exercise": "two_leg_heel_raise", "load_kg": 0,
                                     "sets_completed": [15, 15, 15], "pain_during": 2}]


def test_the_loop_at_a_terminal(tmp_path: Path) -> None:
    """Round the whole loop at a terminal: the answers typed, the ids passed
    on as a physiotherapist would copy them, the programme accepted, and
    the next session asked against it."""
    from datetime import timedelta

    from calfrehab.engine import api

    def day(back: int) -> str:
        return (api.clinic_today() - timedelta(days=back)).isoformat()

    case = tmp_path / "ana.json"
    flags = ["--case-id", "ANA-01", "--review-date", day(6), "--age-years", "41",
             "--body-mass-kg", "70", "--sex", "female", "--goal", "running", "--kind",
             "achilles_midportion", "--side", "left", "--irritability", "moderate",
             "--onset-date", day(30), "--red-flags", "none", "--straight-knee",
             "two_leg_heel_raise", "--straight-knee-sets", "3", "--straight-knee-reps", "15",
             "--straight-knee-load-kg", "0", "--bent-knee", "none", "--energy-storage", "none"]
    with terminal("new", str(case), *flags, cwd=tmp_path) as t:
        shown = t.rest()
    assert "new case ANA-01" in shown
    for n, (back, pain) in enumerate(((5, "2"), (3, "2"), (1, "1"))):
        with terminal("log", str(case), "--date", day(back), cwd=tmp_path) as t:
            if n:
                t.answer("(0–10, blank if not known): ", "1")
                t.answer("Morning stiffness, minutes (blank if not known): ", "5")
            t.answer("done per set (or skip) [15, 15, 15]: ", "")
            t.answer("worst pain during (0–10): ", pain)
            assert f"session {day(back)}" in t.rest()
    with terminal("log", str(case), "--morning", cwd=tmp_path) as t:
        t.answer(f"[{day(1)}]: ", "")  # the latest session before today without one
        t.answer("(0–10): ", "1")
        t.answer("Morning stiffness, minutes (blank if not known): ", "")
        assert f"session {day(1)}: next-morning pain 1/10" in t.rest()
    before = case.read_bytes()
    with terminal("assess", str(case), cwd=tmp_path, rc=1) as t:
        t.answer("Assessment date (YYYY-MM-DD) [", "")
        t.answer("reps (blank if not done): ", "200")
        t.answer("uninvolved side, reps: ", "25")
        t.answer("VISA-A score (0–100, blank if not taken): ", "70")
        t.answer("Pain at rest (0–10, blank if not asked): ", "0")
        t.answer("(0–10, blank if not tested): ", "")
        # 200 against 25: the ranges are shown and a confirmation asked.
        t.expect("(symmetry 800%) is outside the plausible range")
        t.answer("anyway? — no, yes [no]: ", "")
        shown = t.rest()
    assert "Nothing was written" in shown and case.read_bytes() == before
    with terminal("assess", str(case), cwd=tmp_path) as t:
        t.answer("Assessment date (YYYY-MM-DD) [", "")
        t.answer("reps (blank if not done): ", "20")
        t.answer("uninvolved side, reps: ", "25")
        t.answer("VISA-A score (0–100, blank if not taken): ", "70")
        t.answer("Pain at rest (0–10, blank if not asked): ", "0")
        t.answer("(0–10, blank if not tested): ", "")
        assert "heel_raise_test" in t.rest()
    with terminal("next", str(case), "--clinician", "A. Berg", cwd=tmp_path) as t:
        shown = t.rest()
    assert "PROGRESS" in shown
    decision = shown.rsplit("· decision ", 1)[1].split()[0]
    with terminal("audit", "override", decision[:8], "--clinician", "A. Berg", "--reason",
                  "one more week on two legs", "--track", "straight_knee", "--decision",
                  "hold", "--exercise", "two_leg_heel_raise", "--sets", "4", "--reps", "12",
                  cwd=tmp_path) as t:
        assert "recorded override" in t.rest()
    with terminal("accept", str(case), "--clinician", "A. Berg", cwd=tmp_path) as t:
        assert "as overridden" in t.rest()
    with terminal("log", str(case), cwd=tmp_path) as t:
        t.answer("Session date (YYYY-MM-DD) [", "")
        t.answer("4 × 12\r\n  done per set (or skip) [12, 12, 12, 12]: ", "")
        t.answer("worst pain during (0–10): ", "1")
        t.answer("3 × 15\r\n  done per set (or skip) [15, 15, 15]: ", "")
        t.answer("worst pain during (0–10): ", "0")
        assert "two_leg_heel_raise 12/12/12/12" in t.rest()
    with terminal("next", str(case), "--no-record", cwd=tmp_path) as t:
        assert "4 × 12" in t.rest()
