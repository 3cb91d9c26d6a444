"""Decide a case and write its course report or its patient handout."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from calfrehab.engine.pipeline import Decided, decide_path, prepare
from calfrehab.engine.report import data as rdata
from calfrehab.engine.report import handout as handout_data
from calfrehab.engine.report.bands import PainBands, pain_bands
from calfrehab.engine.report.render import handout_html, report_html
from calfrehab.engine.safeio import atomic_write_text, check_outputs

# A report holds health data: readable by its owner only.
OUTPUT_MODE = 0o600
NO_PROJECTION = ("The projected course is not available: this version of calfrehab has no "
                 "course simulator.")


class Wrote(BaseModel):
    """What was written: the file, its case, and a line to print."""

    model_config = ConfigDict(frozen=True)

    path: str
    case_id: str
    summary: str


def _bands(decided: Decided) -> PainBands:
    return pain_bands([r.rule for r in decided.evaluation.compiled.base.rules])


def report_data(case: str | Path, audit: Path | None = None,
                rules_dir: Path | None = None) -> rdata.ReportData:
    """The report's content for a case file (deciding it, recording nothing)."""
    decided = decide_path(case, prepare(rules_dir))
    base = decided.evaluation.compiled.base
    rows = None
    if audit is not None:
        from calfrehab.engine.trail.views import list_rows, open_existing

        with open_existing(audit) as trail:
            rows = list_rows(trail, case_id=decided.case.case_id)
    shorts = {s.citation: s.short for s in base.sources.values() if s.short}
    return rdata.build(decided.case, decided.decision, base.ladder, _bands(decided),
                             shorts, rows, None, NO_PROJECTION)


def _inputs(case: str | Path) -> list[str | Path]:
    return [] if str(case) == "-" else [case]


def write_report(case: str | Path, out: Path, *, audit: Path | None = None,
                 rules_dir: Path | None = None) -> Wrote:
    # Refused before any work: the report must not replace the case or the trail.
    check_outputs([out], inputs=_inputs(case), trail=audit)
    data = report_data(case, audit, rules_dir)
    atomic_write_text(out, report_html(data, str(case)), mode=OUTPUT_MODE)
    sessions = sum(len(t.rows) for t in data.timelines)
    decisions = "no trail" if data.decisions is None else f"{len(data.decisions)} decision(s)"
    return Wrote(path=str(out), case_id=data.case_id,
                 summary=f"report for case {data.case_id}: {sessions} exercise session(s), "
                         f"{len(data.assessments)} assessment(s), {decisions}")


def write_handout(case: str | Path, out: Path, *, rules_dir: Path | None = None) -> Wrote:
    check_outputs([out], inputs=_inputs(case))
    decided = decide_path(case, prepare(rules_dir))
    ladder = decided.evaluation.compiled.base.ladder
    names = {ex: info.name for ex, info in ladder.exercises.items()}
    data = handout_data.build(decided.decision, names, _bands(decided))
    atomic_write_text(out, handout_html(data), mode=OUTPUT_MODE)
    what = "refer: no exercises" if data.refer else f"{len(data.exercises)} exercise(s)"
    return Wrote(path=str(out), case_id=data.case_id,
                 summary=f"handout for case {data.case_id}: {what}")
