"""Two weekly reviews of one patient in ``calfrehab app``, in a real browser
(Debian's Chromium through Playwright, scripts off): decide and accept,
log the week's sessions and the morning after in the forms, decide again,
override with the clinician's own dose and accept it, then print the
report and the handout. At every step what the page shows agrees with
what the clinician decided and with the trail (clinical-basis §8)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import pytest
from appserver import one_patient_served
from browser import launched_chromium
from test_app_browser import Visit

from calfrehab.engine import api

NAME = "runner"


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    yield from launched_chromium()


@pytest.fixture(scope="module")
def clinic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with one_patient_served(tmp_path_factory.mktemp("weeks-clinic"), NAME) as (
            base, case, trail):
        yield {"base": base, "cases": case.parent, "trail": trail}


def _text(page: Any) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page.content())).split())


def _block(page: Any, track: str) -> str:
    return " ".join(page.locator(f'article[aria-labelledby="t-{track}"]').inner_text().split())


def test_two_weekly_reviews_in_the_browser_follow_the_clinician(
        chromium: Any, clinic: dict[str, Any]) -> None:
    v = Visit(chromium, clinic["base"])
    # Week 1: the rules' proposal, recorded and accepted as it is.
    page = v.go(f"/patients/{NAME}")
    page = v.submit("Decide and record")
    assert "Decision recorded" in page.content()
    page = v.submit("Accept")
    text = _text(page)
    assert "Accepted: the programme" in text
    # The accepted decision stays in force: no fresh proposal for the file
    # with its new programme, and no second Accept.
    assert "Decide and record" not in text and "not recorded yet" not in text
    assert _block(page, "straight_knee").startswith("Straight knee (gastrocnemius): Progress")
    assert page.get_by_role("button", name="Accept").count() == 0

    # The week's sessions and the morning after, in the forms.
    for day in ("2026-11-22", "2026-11-24", "2026-11-26"):
        page = v.go(f"/patients/{NAME}/session")
        page.fill("#f-date", day)
        page.fill("#f-straight_knee_pain", "1")
        page.fill("#f-bent_knee_pain", "1")
        page = v.submit()
        assert "Session logged" in page.content(), _text(page)[:1500]
    page = v.go(f"/patients/{NAME}/morning")
    page.fill("#f-morning_pain", "0")
    page.fill("#f-stiffness_min", "0")
    page = v.submit()
    assert "Next-morning pain logged" in page.content()

    # Week 2: proposed on the week's sessions, at the doses accepted.
    text = _text(page)
    assert "Proposal" in text and "Decide and record" in text
    sk = _block(page, "straight_knee")
    assert sk.startswith("Straight knee (gastrocnemius): Progress"), sk
    assert "Now: Single-leg heel raise, straight knee, 3 × 15" in sk
    page = v.submit("Decide and record")
    page.fill("#o-reason", "10 km race on Sunday: keep the bodyweight raises, 4 x 12")
    page.select_option("#o-track", "straight_knee")
    page.select_option("#o-decision", "hold")
    page.select_option("#o-exercise", "single_leg_heel_raise")
    page.fill("#o-sets", "4")
    page.fill("#o-reps", "12")
    page = v.submit("Record override")
    sk = _block(page, "straight_knee")
    assert sk.startswith("Straight knee (gastrocnemius): Hold your decision"), sk
    assert "Your prescription: Single-leg heel raise, straight knee, 4 × 12" in sk
    assert "The rules proposed: Progress, Weighted single-leg heel raise" in sk
    page = v.submit("Accept with the override")
    assert "Accepted: the programme" in page.content()
    assert _block(page, "straight_knee") == sk
    assert "Decide and record" not in _text(page)

    program = api.validate_path(clinic["cases"] / f"{NAME}.json").program
    assert program.straight_knee is not None
    assert (program.straight_knee.exercise, program.straight_knee.sets,
            program.straight_knee.reps) == ("single_leg_heel_raise", 4, 12)
    with api.open_trail(clinic["trail"]) as trail:
        kinds = [r["kind"] for r in api.list_audit(trail, case_id="RUN-0001")]
    assert kinds == ["decision", "accepted", "decision", "override", "accepted"]

    # The report and the handout printed from the page say the same.
    report = v.go(f"/patients/{NAME}/report")
    section = " ".join(report.locator("#proposal").inner_text().split())
    assert section.startswith("Decision at this review")
    assert "The clinician's decision: Overridden by local" in section
    assert "Next: Single-leg heel raise, straight knee, 4 × 12" in section
    assert report.locator("#table-decisions tbody tr:not(.override):not(.accepted)").count() == 2
    assert report.locator("#table-decisions tbody tr.accepted").count() == 2
    handout = " ".join(v.go(f"/patients/{NAME}/handout").inner_text("body").split())
    assert "Single-leg heel raise, straight knee: 4 sets of 12 repetitions" in handout, \
        handout[:1500]
    assert "10 km race on Sunday" in handout
    v.close()
