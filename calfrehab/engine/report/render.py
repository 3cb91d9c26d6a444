"""The report and the handout as one self-contained HTML file each.

jinja2 with autoescaping: every value from a case or a trail is escaped;
only markup this package builds itself (the stylesheet, the charts' SVG,
whose every value is escaped where it is drawn) is marked safe. Neither
page carries a script: the charts are SVG drawn when the page is written,
and the Content-Security-Policy allows no script at all.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import jinja2
from markupsafe import Markup

from calfrehab.engine.explanation.wording import TRACK_TITLES
from calfrehab.engine.report.charts import all_charts
from calfrehab.engine.report.data import ReportData
from calfrehab.engine.report.handout import HandoutData

# No script, no remote anything; inline style only (the page's own sheet).
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("calfrehab.engine.report", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
        lstrip_blocks=True, keep_trailing_newline=True,
    )
    env.globals["opt"] = _opt
    env.globals["csp"] = Markup(CSP)
    return env


def _opt(value: Any, suffix: str = "") -> str:
    """A table cell: blank for a value not measured."""
    if value is None:
        return ""
    return f"{value:g}{suffix}" if isinstance(value, float) else f"{value}{suffix}"


def css() -> Markup:
    """The stylesheet, as markup: it is ours, and escaping it would turn
    its quotes into entities the browser does not read in a <style>."""
    text = _env().loader.get_source(_env(), "report.css")[0]  # type: ignore[union-attr]
    if "</" in text:
        raise ValueError("report.css must not contain '</'")
    return Markup(text)


def report_html(data: ReportData) -> str:
    return _env().get_template("report.html.j2").render(
        d=data, charts=all_charts(data), css=css(), titles=TRACK_TITLES)


def handout_html(data: HandoutData) -> str:
    return _env().get_template("handout.html.j2").render(h=data, css=css())
