"""The report and the handout as one self-contained HTML file each.

jinja2 with autoescaping: every value from a case or a trail is escaped;
only the charts' own HTML (plotly's, whose JSON escapes ``<``) is marked
safe. The report carries plotly.js inline, once, so it opens from disk
and makes no network request; the handout has no script at all.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import jinja2

from calfrehab.engine.report.charts import all_charts
from calfrehab.engine.report.data import TRACK_TITLES, ReportData
from calfrehab.engine.report.handout import HandoutData


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("calfrehab.engine.report", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
        lstrip_blocks=True, keep_trailing_newline=True,
    )
    env.globals["opt"] = _opt
    return env


def _opt(value: Any, suffix: str = "") -> str:
    """A table cell: blank for a value not measured."""
    if value is None:
        return ""
    return f"{value:g}{suffix}" if isinstance(value, float) else f"{value}{suffix}"


def _css() -> str:
    return _env().loader.get_source(_env(), "report.css")[0]  # type: ignore[union-attr]


@lru_cache(maxsize=1)
def plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    js: str = get_plotlyjs()
    # Inline in a <script>: a "</script" inside would end it early.
    return js.replace("</script", "<\\/script")


def report_html(data: ReportData, source: str) -> str:
    charts = all_charts(data)
    return _env().get_template("report.html.j2").render(
        d=data, charts={**dict.fromkeys(("chart-rung", "chart-load", "chart-pain",
                                         "chart-heel-raise", "chart-scores",
                                         "chart-projection")), **charts},
        plotlyjs=plotly_js() if charts else "", css=_css(), source=source,
        titles=TRACK_TITLES,
    )


def handout_html(data: HandoutData) -> str:
    return _env().get_template("handout.html.j2").render(h=data, css=_css())
