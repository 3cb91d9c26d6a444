"""The report's decision section shows the decision recorded in the trail,
on the case as it was at that review, as the clinician decided it
(clinical-basis §8): not the current case file decided again, which after
``accept`` (a new programme, no session done at it) and after sessions
logged since says something nobody decided."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from helpers import EXAMPLES

from calfrehab.cli.main import cli

RUNNER = EXAMPLES / "runner-stuck-on-two-leg.json"


def _runner_case(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the runner example to work on, and where its trail goes."""
    case, trail = tmp_path / "case.json", tmp_path / "t.sqlite3"
    case.write_bytes(RUNNER.read_bytes())
    return case, trail


def _decide(case: Path, trail: Path, *extra: str) -> dict[str, Any]:
    """`next --json`, recorded in ``trail``: the decision document."""
    found: dict[str, Any] = json.loads(run("next", str(case), "--json", "--audit", str(trail),
                                           *extra))
    return found


def _override(decided: dict[str, Any], trail: Path, clinician: str, reason: str,
              *what: str) -> None:
    run("audit", "override", decided["decision_id"][:12], "--audit", str(trail),
        "--clinician", clinician, "--reason", reason, *what)


# The clinician's override the tests make: hold straight-knee raises at 4 x 12.
HOLD_4X12 = ("--track", "straight_knee", "--decision", "hold",
             "--exercise", "two_leg_heel_raise", "--sets", "4", "--reps", "12")


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def _text(markup: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


class Section:
    """The report's decision section as a reader sees it: its text, and
    each track's block by track id."""

    def __init__(self, case: Path, trail: Path | None, out: Path) -> None:
        run("report", str(case), *(["--audit", str(trail)] if trail else []),
            "--weeks", "0", "-o", str(out))
        page = out.read_text(encoding="utf-8")
        section = page[page.index('<section id="proposal">'):]
        self.markup = section[:section.index("</section>")]
        self.text = _text(self.markup)

    def track(self, track: str) -> str:
        found = re.search(rf'(?s)<div class="track" data-track="{track}">(.*?)</div>',
                          self.markup)
        assert found, f"no {track} block"
        return _text(found.group(1))


def test_after_override_and_accept_the_report_shows_the_recorded_decision_as_decided(
        tmp_path: Path) -> None:
    case, trail = _runner_case(tmp_path)
    before = Section(case, None, tmp_path / "before.html")
    # Without a trail the section says it is the rules' proposal, no more.
    assert "No audit trail was given: this is the rules' proposal" in before.text
    decided = _decide(case, trail, "--clinician", "A. Berg")
    assert decided["tracks"]["straight_knee"]["decision"] == "progress"
    _override(decided, trail, "A. Berg", "calf cramp, consolidate", *HOLD_4X12)
    run("accept", str(case), "--audit", str(trail), "--clinician", "A. Berg")

    now = Section(case, trail, tmp_path / "accepted.html")
    text = now.text
    assert text.startswith("Decision at this review")
    sk = now.track("straight_knee")
    # The clinician's decision, with who, when and why, then the rules' own.
    assert sk.startswith("Straight knee (gastrocnemius): Hold")
    assert re.search(r"The clinician's decision: Overridden by A\. Berg on \d{4}-\d\d-\d\d "
                     r"\(calf cramp, consolidate\); accepted into the programme by A\. Berg",
                     sk), sk
    # "Now" is the dose at that review, not the accepted one.
    assert "Now: Two-leg heel raise, straight knee, 3 × 15" in sk
    assert "Next: Two-leg heel raise, straight knee, 4 × 12" in sk
    assert "The rules proposed: Progress, Single-leg heel raise, straight knee, 3 × 15" in sk
    # The recorded reasons, not the accepted programme decided again.
    assert "completed in each of the last 2 sessions" in sk
    assert "0 of the last 2" not in text and "Still needed to progress" not in sk
    # The bent-knee track the override left alone: the rules' start, as
    # before anything was recorded.
    bk = now.track("bent_knee")
    assert bk == before.track("bent_knee")
    assert "clinician's decision" not in bk

    # Sessions logged since: still the recorded decision, said to be older
    # than what the file now holds.
    run("log", str(case), "--date", "2026-11-23", "--straight-knee-pain", "1",
        "--bent-knee-pain", "0", "--no-input")
    run("log", str(case), "--date", "2026-11-25", "--straight-knee-pain", "1",
        "--bent-knee-pain", "0", "--previous-morning-pain", "0",
        "--previous-stiffness-min", "0", "--no-input")
    later = Section(case, trail, tmp_path / "later.html")
    assert later.text.startswith("Decision recorded for the review of 2026-11-20")
    assert ("Entered or changed since this decision: sessions of 2026-11-23, 2026-11-25. "
            "The case has not been decided on them yet") in later.text
    assert later.track("straight_knee") == sk
    assert later.track("bent_knee") == bk

    # Decided again: the new review is the one shown, as the rules say.
    again = _decide(case, trail)
    newest = Section(case, trail, tmp_path / "newest.html")
    assert newest.text.startswith("Decision at this review")
    assert "Entered or changed since" not in newest.text
    word = again["tracks"]["straight_knee"]["decision"].replace("_", " ").capitalize()
    assert newest.track("straight_knee").startswith(f"Straight knee (gastrocnemius): {word}")
    assert "clinician's decision" not in newest.text


def test_a_proposal_recorded_again_after_acceptance_does_not_displace_it(
        tmp_path: Path) -> None:
    # After accept, the same file decided and recorded again (`next` run
    # again, or the record system's chart opened: the CDS service records a
    # decision at each opening) is the rules' proposal for a dose nobody has
    # done yet. The clinician's decision stays the one in force until a
    # session or an assessment is entered.
    case, trail = _runner_case(tmp_path)
    decided = _decide(case, trail)
    _override(decided, trail, "A. Berg", "calf cramp, consolidate", *HOLD_4X12)
    run("accept", str(case), "--audit", str(trail), "--clinician", "A. Berg")
    accepted = Section(case, trail, tmp_path / "accepted.html")

    again = _decide(case, trail)
    assert again["decision_id"] != decided["decision_id"]
    assert again["tracks"]["straight_knee"]["decision"] == "hold"  # 0 of 2 at 4 x 12
    shown = Section(case, trail, tmp_path / "again.html")
    assert shown.text == accepted.text
    assert "accepted into the programme by A. Berg" in shown.track("straight_knee")
    assert "Not yet accepted" not in shown.text and "0 of the last 2" not in shown.text
    # The handout follows the same decision: the accepted 4 x 12.
    run("handout", str(case), "--audit", str(trail), "-o", str(tmp_path / "h.html"))
    handout = _text((tmp_path / "h.html").read_text(encoding="utf-8"))
    assert "Two-leg heel raise, straight knee: 4 sets of 12 repetitions" in handout
    assert "adjusted this plan" in handout

    # A session entered since: the next review's decision is the one shown.
    run("log", str(case), "--date", "2026-11-23", "--straight-knee-pain", "1",
        "--bent-knee-pain", "0", "--no-input")
    newest = _decide(case, trail)
    after = Section(case, trail, tmp_path / "after.html")
    assert after.text.startswith("Decision at this review")
    assert "clinician's decision" not in after.text
    word = newest["tracks"]["straight_knee"]["decision"].replace("_", " ").capitalize()
    assert after.track("straight_knee").startswith(f"Straight knee (gastrocnemius): {word}")


def test_an_override_not_yet_accepted_shows_the_clinicians_prescription(
        tmp_path: Path) -> None:
    case, trail = _runner_case(tmp_path)
    decided = _decide(case, trail)
    _override(decided, trail, "B. Chen", "ankle sore on stairs",
              "--track", "bent_knee", "--decision", "not_started")
    section = Section(case, trail, tmp_path / "r.html")
    bk = section.track("bent_knee")
    assert bk.startswith("Bent knee (soleus): Not started")
    assert "Overridden by B. Chen" in bk and "not yet accepted into the programme" in bk
    assert "Next: no prescription recorded with the override" in bk
    assert "The rules proposed: Start, Two-leg heel raise, knee bent (soleus), 3 × 15" in bk
    # The track left alone keeps the rules' decision, unannotated.
    sk = section.track("straight_knee")
    assert sk.startswith("Straight knee (gastrocnemius): Progress")
    assert "clinician's decision" not in sk


def test_the_projection_follows_an_override_before_and_after_it_is_accepted(
        tmp_path: Path) -> None:
    from calfrehab.engine.report.build import report_data

    case, trail = _runner_case(tmp_path)
    decided = _decide(case, trail)
    _override(decided, trail, "A. Berg", "calf cramp, consolidate", *HOLD_4X12)

    def course() -> list[tuple[int, dict[str, str | None]]]:
        data = report_data(case, trail, weeks=4)
        return [(r.week, r.doses) for r in data.projection or []]

    pending = course()
    # Held at 4 x 12 as the clinician decided, not moved to single-leg raises
    # as the rules proposed.
    assert pending[0][1]["straight_knee"] == "R1 4 × 12"
    assert pending[1][1]["straight_knee"] == "R1 4 × 12"
    run("accept", str(case), "--audit", str(trail), "--clinician", "A. Berg")
    assert course() == pending


def test_the_recorded_decisions_table_gives_each_overrides_dose_and_each_acceptance(
        tmp_path: Path) -> None:
    case, trail = _runner_case(tmp_path)
    decided = _decide(case, trail)
    _override(decided, trail, "A. Berg", "calf cramp, consolidate", *HOLD_4X12)
    run("accept", str(case), "--audit", str(trail), "--clinician", "C. Diaz")
    out = tmp_path / "r.html"
    run("report", str(case), "--audit", str(trail), "--weeks", "0", "-o", str(out))
    page = out.read_text(encoding="utf-8")
    table = page[page.index('id="table-decisions"'):]
    table = _text(table[:table.index("</table>")])
    assert ("Reason: calf cramp, consolidate. Prescribes Straight knee (gastrocnemius): "
            "Two-leg heel raise, straight knee, 4 × 12") in table
    assert re.search(r"accepted Accepted into the programme by C\. Diaz on "
                     r"\d{4}-\d\d-\d\d, as overridden\.", table), table


def test_a_red_flag_entered_after_acceptance_refers_in_the_handout_and_the_report(
        tmp_path: Path) -> None:
    """An accepted programme never outranks a referral the case file gives
    now: the handout must not send home exercises to a patient with a
    suspected deep vein thrombosis entered since."""
    case, trail = _runner_case(tmp_path)
    run("next", str(case), "--audit", str(trail))
    run("accept", str(case), "--audit", str(trail))
    doc = json.loads(case.read_text(encoding="utf-8"))
    doc["red_flags"] = ["calf_swelling_warmth"]
    case.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    out = tmp_path / "h.html"
    assert "refer: no exercises" in run("handout", str(case), "--audit", str(trail),
                                        "-o", str(out))
    handout = _text(out.read_text(encoding="utf-8"))
    assert "Please pause your exercises and contact the clinic" in handout
    assert "What to do" not in handout and "Single-leg heel raise" not in handout
    section = Section(case, trail, tmp_path / "r.html")
    assert "REFER: stop progression and refer" in section.text
    assert "The case file as it is now refers" in section.text
    assert "The handout lists this" not in section.text
    # Without a referral, a change other than sessions is named too.
    doc["red_flags"] = []
    doc["condition"]["irritability"] = "high"
    case.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    changed = Section(case, trail, tmp_path / "r2.html")
    assert "Changed in the case file since this decision: condition." in changed.text


def test_the_handout_dates_the_accepted_programme_from_its_visit_not_a_later_session(
        tmp_path: Path) -> None:
    case, trail = _runner_case(tmp_path)
    run("next", str(case), "--audit", str(trail))
    run("accept", str(case), "--audit", str(trail))
    # A session logged since moves the case's review date to its own.
    run("log", str(case), "--date", "2026-11-23", "--straight-knee-pain", "1",
        "--bent-knee-pain", "0", "--no-input")
    assert json.loads(case.read_text(encoding="utf-8"))["review_date"] == "2026-11-23"
    out = tmp_path / "h.html"
    run("handout", str(case), "--audit", str(trail), "-o", str(out))
    text = _text(out.read_text(encoding="utf-8"))
    assert "From your visit on 2026-11-20 until your next review on 2026-11-27" in text
    assert "Single-leg heel raise, straight knee: 3 sets of 15 repetitions" in text
