"""The course report and the handout as HTML (the browser tests open them;
these check content, escaping, and that the numbers are the rules')."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import EXAMPLES, rules_dir_with

from calfrehab.cli.main import cli
from calfrehab.engine import api
from calfrehab.engine.errors import CalfrehabError
from calfrehab.engine.explanation.document import Reason
from calfrehab.engine.explanation.wording import clinician_text, merge_reasons
from calfrehab.engine.knowledge.loader import load_ladder, load_rulebase
from calfrehab.engine.report.bands import pain_bands
from calfrehab.engine.report.build import report_data

FLARE = EXAMPLES / "plantar-next-morning-jump-flare.json"
RED_FLAG = EXAMPLES / "red-flag-recent-fluoroquinolone.json"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.stdout, result.stderr


def test_the_pain_bands_are_the_rules_own(tmp_path: Path) -> None:
    shipped = pain_bands([r.rule for r in load_rulebase().rules])
    assert (shipped.safe_max, shipped.acceptable_max, shipped.morning_max,
            shipped.morning_rise) == (3, 5, 5, 2)
    rules = rules_dir_with(tmp_path, {}, keep_shipped_rules=True)
    manifest = rules / "rulebase.yaml"
    text = manifest.read_text()
    assert text.count("pain_during_limit: 5\n") == 1
    manifest.write_text(text.replace("pain_during_limit: 5\n", "pain_during_limit: 6\n"))
    data = report_data(FLARE, rules_dir=rules)
    assert data.bands.acceptable_max == 6
    out = tmp_path / "r.html"
    api.write_report(FLARE, out, rules_dir=rules)
    assert "4–6 acceptable" in out.read_text()


def test_missing_band_is_named(tmp_path: Path) -> None:
    rules = [r.rule for r in load_rulebase().rules if r.rule.id != "pain-during-within-margin"
             and r.rule.id != "hold-pain-during-acceptable"]
    with pytest.raises(CalfrehabError, match=r"safe_max .*no rule sets it"):
        pain_bands(rules)


def test_report_is_lean_scriptless_and_names_no_absolute_path(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    code, stdout, err = run("report", str(FLARE), "-o", str(out))
    assert code == 0, err
    assert "report for case PF-0188" in stdout
    html = out.read_text(encoding="utf-8")
    assert "<script" not in html.lower() and "javascript:" not in html.lower()
    assert re.search(r" on[a-z]+=", html) is None  # no event handler attributes
    csp = re.search(r'Content-Security-Policy" content="([^"]+)"', html)
    assert csp is not None and "script" not in csp.group(1)
    assert "default-src 'none'" in csp.group(1)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "<link" not in html
    # The stylesheet is the file's own text, not HTML-escaped.
    assert 'font-family: "DejaVu Sans"' in html and "&#34;" not in html.split("</style>")[0]
    assert "@page { size: A4" in html
    for chart in ("chart-rung", "chart-pain", "chart-morning", "chart-stiffness",
                  "chart-heel-raise", "chart-scores", "chart-projection"):
        assert f'id="{chart}"' in html, chart
    assert len(out.read_bytes()) < 200_000
    assert f"Full trail: calfrehab explain {FLARE.name}" in html
    assert str(FLARE.resolve().parent) not in html and str(tmp_path) not in html
    # One table per data set.
    assert html.count('<table class="data') == 3  # sessions, assessments, projection


def test_report_says_each_decision_its_reasons_and_what_is_missing() -> None:
    data = report_data(FLARE)
    assert data.next_review == data.review_date + timedelta(days=7)
    by_track = {t.track: t for t in data.proposal}
    assert by_track["straight_knee"].decision == "Regress"
    assert any("hurt most" in r and "[Silbernagel 2007]" in r
               for r in by_track["straight_knee"].reasons)
    energy = by_track["energy_storage"]
    assert energy.decision == "Not started" and energy.routes
    missing = "; ".join(m for r in energy.routes for m in r.missing)
    assert "Heel-raise symmetry 65.4% (needs at least 90%)" in missing
    assert "Heel raises, involved side 17 (needs at least 25)" in missing
    # The flare, shared by every track, is said once above them.
    flare = [r for r in data.reasons if r.text.startswith("Next-morning pain rose by 3")]
    assert len(flare) == 1 and flare[0].cites == ["Silbernagel 2007"]
    for t in data.proposal:
        assert not any(r.startswith("Next-morning pain rose") for r in t.reasons)


def test_citations_carry_their_year() -> None:
    data = report_data(EXAMPLES / "runner-stuck-on-two-leg.json")
    shorts = [s.short for s in data.sources]
    for s in data.sources:  # a citation with a year is cited with it
        if year := re.search(r"\b(19|20)\d\d\b", s.citation):
            assert year.group(0) in s.short, s
    assert len(set(shorts)) == len(shorts)


def test_report_escapes_what_people_typed(tmp_path: Path) -> None:
    trail = tmp_path / "t.sqlite3"
    code, out, err = run("next", str(FLARE), "--json", "--audit", str(trail))
    assert code == 0, err
    decision_id = re.search(r'"decision_id": "([0-9a-f]+)"', out).group(1)  # type: ignore[union-attr]
    evil = '<img src=x onerror="alert(1)">'
    code, _, err = run("audit", "override", decision_id, "--audit", str(trail),
                       "--clinician", "Dr <b>X</b>", "--reason", evil)
    assert code == 0, err
    report = tmp_path / "r.html"
    code, _, err = run("report", str(FLARE), "--audit", str(trail), "-o", str(report))
    assert code == 0, err
    html = report.read_text(encoding="utf-8")
    assert evil not in html and "&lt;img src=x onerror=" in html
    assert "Dr &lt;b&gt;X&lt;/b&gt;" in html


def test_report_data_follows_the_case(tmp_path: Path) -> None:
    data = report_data(FLARE)
    assert data.case_id == "PF-0188" and data.decisions is None
    straight = next(t for t in data.timelines if t.track == "straight_knee")
    assert [r.pain_during for r in straight.rows] == [2, 2, 3]
    assert data.assessments[0].lsi == round(100 * 17 / 26, 1)
    # The projected course is the simulator's, from this review on.
    course = api.simulate(FLARE, weeks=12)
    assert data.projection is not None
    assert [r.week for r in data.projection] == [r.week for r in course.rows]
    assert data.projection[0].review_date == data.review_date
    assert "not a prognosis" in data.projection_note
    assert data.source_name == FLARE.name
    assert report_data(FLARE, weeks=0).projection is None


def test_report_needs_an_output_and_an_existing_trail(tmp_path: Path) -> None:
    code, _, err = run("report", str(FLARE))
    assert code == 2 and "--output" in err
    code, _, err = run("report", str(FLARE), "--audit", str(tmp_path / "none.sqlite3"),
                       "-o", str(tmp_path / "r.html"))
    assert code == 1 and "no audit trail" in err
    assert not (tmp_path / "r.html").exists()


def test_handout_for_a_referral_lists_no_exercise(tmp_path: Path) -> None:
    out = tmp_path / "h.html"
    code, stdout, err = run("handout", str(RED_FLAG), "-o", str(out))
    assert code == 0, err
    assert "refer: no exercises" in stdout
    html = out.read_text(encoding="utf-8")
    assert "contact the clinic" in html and "What to do" not in html
    assert "<script" not in html


def test_plain_wording_has_one_times_sign_units_and_no_field_names() -> None:
    ladder = load_ladder()
    assert clinician_text("3 x 15 of two-leg heel raise, straight knee completed", ladder) == (
        "3 × 15 of two-leg heel raise, straight knee completed")
    assert clinician_text("5 x 45 of isometric heel-raise hold, straight knee done", ladder) == (
        "5 × 45 s of isometric heel-raise hold, straight knee done")
    assert clinician_text("record patient.body_mass_kg", ladder) == "record body mass (kg)"
    assert clinician_text("record the last session's pain_next_morning") == (
        "record the last session's next-morning pain")


def test_a_reason_for_every_track_is_said_once() -> None:
    source = ["Silbernagel 2007"]
    reasons = [
        Reason(rule="flare", text="Next-morning pain rose by 3", sources=source),
        Reason(rule="hold-session-flare@straight_knee", track="straight_knee",
               text="Hold single-leg heel raise, straight knee: the last session flared",
               sources=source),
        Reason(rule="hold-session-flare@bent_knee", track="bent_knee",
               text="Hold two-leg heel raise, knee bent (soleus): the last session flared",
               sources=source),
    ]
    names = {"straight_knee": "single-leg heel raise, straight knee",
             "bent_knee": "two-leg heel raise, knee bent (soleus)"}
    merged = merge_reasons(reasons, names, ["straight_knee", "bent_knee"])
    assert [m.text for m in merged] == ["Next-morning pain rose by 3",
                                        "Hold every exercise: the last session flared"]
    assert merged[1].tracks == ["straight_knee", "bent_knee"]
    # Only one of two tracks: kept per track.
    assert len(merge_reasons(reasons[:2], names, ["straight_knee", "bent_knee"])) == 2


def test_report_refuses_to_replace_its_case_or_the_trail(tmp_path: Path) -> None:
    case = tmp_path / "c.json"
    case.write_bytes(FLARE.read_bytes())
    before = case.read_bytes()
    code, _, err = run("report", str(case), "-o", str(case))
    assert code == 2 and "refusing to write" in err
    assert case.read_bytes() == before
    trail = tmp_path / "t.sqlite3"
    run("next", str(case), "--audit", str(trail))
    code, _, err = run("report", str(case), "--audit", str(trail), "-o", str(trail))
    assert code == 2 and "audit trail" in err
    code, _, err = run("handout", str(case), "-o", str(case))
    assert code == 2 and case.read_bytes() == before


def test_a_referred_case_gets_no_projection() -> None:
    data = report_data(RED_FLAG)
    assert data.outcome == "refer" and data.projection is None
    assert "referred" in data.projection_note


HANDOUT_CASES = sorted(EXAMPLES.glob("*.json"))


def _handout_text(case: Path, tmp_path: Path, *extra: str) -> str:
    out = tmp_path / f"{case.stem}.html"
    code, _, err = run("handout", str(case), "-o", str(out), *extra)
    assert code == 0, err
    html = out.read_text(encoding="utf-8")
    assert "<script" not in html
    text = re.sub(r"<style>.*?</style>", "", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text))


@pytest.mark.parametrize("case", HANDOUT_CASES, ids=lambda p: p.stem)
def test_handout_speaks_plainly(case: Path, tmp_path: Path) -> None:
    from calfrehab.engine.report.handout import plain_words

    text = _handout_text(case, tmp_path)
    lowered = text.lower()
    for word in plain_words().jargon:
        assert re.search(rf"\b{re.escape(word.lower())}\b", lowered) is None, word
    assert "same rung" not in lowered and "_" not in text and "@" not in text
    doc = json.loads(case.read_text(encoding="utf-8"))
    side = doc["condition"]["side"]
    assert ("both legs" if side == "both" else f"your {side} leg") in text
    if doc["patient"]["goal"] != "running":
        assert "running target" not in lowered
    # Pain limits come from one place: no exercise tip names its own.
    assert "out of 10 is acceptable" not in lowered.split("how much pain")[0]
    if doc["condition"]["kind"] == "calf_strain" and "what to do" in lowered:
        pain = lowered.split("how much pain is all right")[1]
        assert "pain-free" in pain and "acceptable" not in pain
    assert "Stop and call the clinic" in text


def test_handout_names_the_clinic_dates_and_weights_by_kind(tmp_path: Path) -> None:
    case = EXAMPLES / "calf-strain-gastrocnemius-hops-to-running.json"
    text = _handout_text(case, tmp_path, "--clinic-name", "Harbour Physio",
                         "--clinic-phone", "020 7946 0000", "--next-review", "2026-08-02")
    assert "Harbour Physio" in text and "020 7946 0000" in text
    assert "next review on 2026-08-02" in text
    assert f"Printed {date.today().isoformat()}" in text or "Printed 20" in text
    assert "on a seated calf-raise machine, or a weight resting on your knees" in text
    assert "a backpack, or a dumbbell in your hand" in text


def test_a_handout_with_no_clinic_has_no_empty_clinic_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # No calfrehab.toml near the case and none named: no clinic's name or
    # phone. The handout printed a line saying only "Your clinic".
    monkeypatch.delenv("CALFREHAB_CONFIG", raising=False)
    case = tmp_path / "runner.json"
    case.write_bytes((EXAMPLES / "runner-stuck-on-two-leg.json").read_bytes())
    text = _handout_text(case, tmp_path)
    assert "Your clinic" not in text
    html = (tmp_path / "runner.html").read_text(encoding="utf-8")
    assert 'class="clinic"' not in html
    assert "Stop and call the clinic if you notice" in text
    # A phone alone still says whom to call.
    text = _handout_text(case, tmp_path, "--clinic-phone", "020 7946 0000", "--force")
    assert "Your clinic · phone 020 7946 0000" in text


def test_a_held_track_gets_no_progression_tip(tmp_path: Path) -> None:
    text = _handout_text(FLARE, tmp_path)
    assert "up on two legs, down on one" not in text


def test_report_and_handout_say_where_the_case_stands_in_the_trail(tmp_path: Path) -> None:
    trail = tmp_path / "t.sqlite3"
    code, out, err = run("next", str(FLARE), "--json", "--audit", str(trail),
                         "--clinician", "A. Berg")
    assert code == 0, err
    decision_id = json.loads(out)["decision_id"]
    code, _, err = run("audit", "override", decision_id[:12], "--audit", str(trail),
                       "--clinician", "A. Berg", "--reason", "calf tender, keep the dose",
                       "--track", "bent_knee", "--decision", "hold")
    assert code == 0, err
    report, handout = tmp_path / "r.html", tmp_path / "h.html"
    assert run("report", str(FLARE), "--audit", str(trail), "-o", str(report))[0] == 0
    text = re.sub(r"\s+", " ", report.read_text(encoding="utf-8"))
    assert "In the audit trail:" in text and "by A. Berg" in text
    assert "Overridden by A. Berg" in text and "Reason: calf tender, keep the dose" in text
    assert "Not yet accepted into the programme" in text
    assert "Prepared by:</b> A. Berg" in text
    assert run("handout", str(FLARE), "--audit", str(trail), "-o", str(handout))[0] == 0
    assert "Your physiotherapist adjusted this plan" in handout.read_text(encoding="utf-8")
    assert "calf tender, keep the dose" in handout.read_text(encoding="utf-8")


def test_the_handout_lists_what_the_clinician_decided_then_the_programme(
        tmp_path: Path) -> None:
    """clinical-basis §8: after an override with a prescription, the
    handout lists the clinician's exercise (not the rules' proposal) and the
    side; after accept, the case's programme."""
    case = tmp_path / "case.json"
    case.write_bytes(FLARE.read_bytes())
    trail = tmp_path / "t.sqlite3"
    code, out, err = run("next", str(case), "--json", "--audit", str(trail),
                         "--clinician", "A. Berg")
    assert code == 0, err
    decided = json.loads(out)
    from calfrehab.engine.report.handout import lay

    proposed = lay(decided["tracks"]["straight_knee"]["next"]["name"])
    assert proposed != "Heel-raise hold, knee straight"
    code, _, err = run("audit", "override", decided["decision_id"][:12], "--audit", str(trail),
                       "--clinician", "A. Berg", "--reason", "one more week of holds",
                       "--track", "straight_knee", "--decision", "regress",
                       "--exercise", "isometric_heel_raise_hold", "--sets", "5",
                       "--reps", "45")
    assert code == 0, err

    def handout() -> str:
        out_file = tmp_path / f"h{len(list(tmp_path.glob('h*.html')))}.html"
        assert run("handout", str(case), "--audit", str(trail), "-o", str(out_file))[0] == 0
        return re.sub(r"\s+", " ", out_file.read_text(encoding="utf-8"))

    text = handout()
    assert "your right leg" in text
    assert "5 holds of 45 seconds each" in text
    assert "Heel-raise hold, knee straight" in text and proposed not in text
    report = tmp_path / "r.html"
    assert run("report", str(case), "--audit", str(trail), "-o", str(report))[0] == 0
    assert "The programme as overridden" in report.read_text(encoding="utf-8")

    code, _, err = run("accept", str(case), "--audit", str(trail), "--clinician", "A. Berg")
    assert code == 0, err
    program = json.loads(case.read_text(encoding="utf-8"))["program"]
    assert program["straight_knee"]["exercise"] == "isometric_heel_raise_hold"
    text = handout()
    assert "5 holds of 45 seconds each" in text and proposed not in text
    # The case's own programme: the bent-knee track as accepted.
    bent = program["bent_knee"]
    assert f"{bent['sets']} sets of {bent['reps']} repetitions" in text
    report.unlink()
    assert run("report", str(case), "--audit", str(trail), "-o", str(report))[0] == 0
    assert "The programme as accepted" in report.read_text(encoding="utf-8")
