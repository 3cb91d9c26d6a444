"""Text for people: for the terminal, the course report and the handout.

:func:`for_terminal` and :func:`for_terminal_lines` make any text from a
case, a rule or a person safe to print; :func:`csv_cell` to put in a
spreadsheet. The clinician's wording of reasons and doses
(:func:`clinician_text`, :func:`dose_text`, ...) is the one the report and
``next`` share. :func:`write_report` and :func:`write_handout` write HTML;
the report (its SVG charts, jinja2) loads only when it runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from calfrehab.engine.explanation.wording import (
    DECISION_WORDS,
    TRACK_TITLES,
    clinician_text,
    condition_line,
    criterion_text,
    decision_word,
    dose_text,
    exercise_name,
    merge_reasons,
    milestone_text,
    missing_criteria,
    reason_names,
    reason_unit,
    restating_rules,
    short_citation,
    track_title,
    unit_of,
)
from calfrehab.engine.knowledge.conditions import format_value
from calfrehab.engine.textsafe import csv_cell, for_terminal, for_terminal_lines

if TYPE_CHECKING:
    from calfrehab.engine.report.build import Wrote, write_handout, write_report
else:
    from calfrehab.engine.api._lazy import lazy_names

    # The report and the handout (their data, charts and templates) load
    # when first used: the terminal's wording above does not need them.
    __getattr__, __dir__ = lazy_names(__name__, {
        "calfrehab.engine.report.build": ("Wrote", "write_handout", "write_report"),
    })

__all__ = [
    "DECISION_WORDS",
    "TRACK_TITLES",
    "Wrote",
    "clinician_text",
    "condition_line",
    "criterion_text",
    "csv_cell",
    "decision_word",
    "dose_text",
    "exercise_name",
    "for_terminal",
    "for_terminal_lines",
    "format_value",
    "merge_reasons",
    "milestone_text",
    "missing_criteria",
    "reason_names",
    "reason_unit",
    "report_charts",
    "restating_rules",
    "short_citation",
    "track_title",
    "unit_of",
    "write_handout",
    "write_report",
]


def report_charts(case: str | Path, *, rules_dir: Path | None = None,
                  weeks: int = 0) -> dict[str, str]:
    """The course report's charts for a case, each as inline SVG markup
    (an ``<svg>`` and its legend, every value escaped, no script), by id:
    chart-rung, chart-load, chart-pain, chart-morning, chart-stiffness,
    chart-heel-raise, chart-scores, chart-projection (with ``weeks``)."""
    from calfrehab.engine.report.build import report_data
    from calfrehab.engine.report.charts import all_charts

    data = report_data(case, rules_dir=rules_dir, weeks=weeks)
    return {k: str(c.svg) for k, c in all_charts(data).items()}
