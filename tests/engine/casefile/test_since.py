"""What a case file holds since the case a decision was made on
(api.entered_since): one answer for the decision in force (case_state with
``acted_on``), the report's notes (report/recorded.py) and the app's
"accepted as it was decided" (app/views.py), which decided it three ways."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from helpers import EXAMPLES

from calfrehab.app.views import _accepted_as_is
from calfrehab.cli.main import cli
from calfrehab.engine import api
from calfrehab.engine.report.recorded import recorded_review

RUNNER = EXAMPLES / "runner-stuck-on-two-leg.json"
Doc = dict[str, Any]


def _doc() -> Doc:
    found: Doc = json.loads(RUNNER.read_text(encoding="utf-8"))
    return found


def test_nothing_since_when_only_the_programme_changed() -> None:
    then = _doc()
    now = copy.deepcopy(then)
    now["program"] = {"straight_knee": {"exercise": "x"}}
    since = api.entered_since(then, now)
    assert since == api.Since([], [], [], [], False)
    assert since.unchanged and not since.entered


def test_entries_are_compared_whatever_order_the_file_lists_them() -> None:
    then = _doc()
    now = copy.deepcopy(then)
    now["sessions"].reverse()
    for s in now["sessions"]:  # keys in another order: the same entry
        s.update(dict(reversed(list(s.items()))))
    assert api.entered_since(then, now).unchanged


def test_a_session_logged_twice_on_one_day_is_two_sessions() -> None:
    then = _doc()
    now = copy.deepcopy(then)
    now["sessions"].append(copy.deepcopy(now["sessions"][-1]))
    since = api.entered_since(then, now)
    assert since.sessions == [then["sessions"][-1]["date"]] and since.entered


def test_a_changed_entry_is_entered_and_a_removed_one_is_removed() -> None:
    then = _doc()
    now = copy.deepcopy(then)
    now["sessions"][0]["pain_next_morning"] = 7
    del now["sessions"][1]
    since = api.entered_since(then, now)
    first, second = (s["date"] for s in then["sessions"])
    assert since.sessions == [first]
    assert since.removed == sorted([first, second])
    assert since.entered and not since.fields


def test_a_number_equal_in_value_is_no_change() -> None:
    # 1.0 retyped as 1 (or 20 as 20.0) is the same entry; true is still not 1.
    then = _doc()
    now = copy.deepcopy(then)
    exercise = now["sessions"][0]["exercises"][0]
    exercise["pain_during"] = float(exercise["pain_during"])
    then["sessions"][1]["pain_next_morning"] = 2.0
    now["sessions"][1]["pain_next_morning"] = 2
    assert api.entered_since(then, now).unchanged
    now["sessions"][1]["pain_next_morning"] = 2.5
    assert api.entered_since(then, now).sessions == [then["sessions"][1]["date"]]
    now["sessions"][1]["pain_next_morning"] = True
    then["sessions"][1]["pain_next_morning"] = 1
    assert api.entered_since(then, now).entered


def test_other_fields_and_the_review_date() -> None:
    then = _doc()
    now = copy.deepcopy(then)
    now["red_flags"] = [*now["red_flags"], "night_pain"]
    now["review_date"] = "2026-12-01"
    since = api.entered_since(then, now)
    assert since.fields == ["red_flags"] and since.review_date_moved
    assert not since.entered and not since.unchanged


# ------------------------------------------------ the three that use it agree


def _run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def accepted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Doc]:
    """The runner decided and accepted: its trail, and the file as accept
    left it (the decided programme written in)."""
    tmp = tmp_path_factory.mktemp("since")
    case, trail = tmp / "case.json", tmp / "t.sqlite3"
    case.write_bytes(RUNNER.read_bytes())
    _run("next", str(case), "--audit", str(trail))
    _run("accept", str(case), "--audit", str(trail), "--clinician", "A. Berg")
    doc: Doc = json.loads(case.read_text(encoding="utf-8"))
    return trail, doc


def _reordered(d: Doc) -> None:
    d["sessions"].reverse()


def _logged(d: Doc) -> None:
    d["sessions"].append({**d["sessions"][-1], "date": "2026-11-21"})


def _removed(d: Doc) -> None:
    del d["sessions"][0]


def _as_is(d: Doc) -> None:
    return None


def _retyped(d: Doc) -> None:
    for session in d["sessions"]:
        for exercise in session["exercises"]:
            exercise["pain_during"] = float(exercise["pain_during"])  # 0 as 0.0


@pytest.mark.parametrize("change, entered", [
    (_as_is, False), (_reordered, False), (_retyped, False), (_logged, True),
    (_removed, True)])
def test_the_decision_in_force_the_report_and_the_app_agree(
        accepted: tuple[Path, Doc], change: Callable[[Doc], None], entered: bool) -> None:
    trail, accepted_doc = accepted
    doc = copy.deepcopy(accepted_doc)
    change(doc)
    case_id = doc["case_id"]
    in_force = api.case_state(trail, case_id, acted_on=True, current=doc)
    assert (in_force is None) == entered
    state = api.case_state(trail, case_id)
    assert state is not None and state.case is not None and state.accepted is not None
    # The app: the file is the decided case but for the accepted programme.
    # (Before: a file listing the same sessions in another order was not.)
    latest = {"case": state.case, "accepted": [{"programme": state.accepted.program}]}
    assert _accepted_as_is(latest, doc) == (not entered)
    # The report: what was entered since, by date (a removal is no entry).
    review = recorded_review(state, api.prepare(None), doc)
    assert review is not None
    since = api.entered_since(state.case, doc)
    assert review.sessions_since == since.sessions
    assert review.sessions_since == (["2026-11-21"] if change is _logged else [])
