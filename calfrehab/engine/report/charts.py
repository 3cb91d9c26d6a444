"""The report's charts, drawn with plotly and embedded without plotly.js
(the page carries one inline copy for all charts, so it opens offline).

Each series has its own marker shape and line dash as well as a colour,
and each is named in the legend, so a chart reads in black and white; pain
bands are labelled in words. Every chart sits beside a table of the same
numbers (the template's), for screen readers and for print.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
from pydantic import BaseModel, ConfigDict

from calfrehab.engine.report.data import TRACK_TITLES, ReportData

WIDTH = 640  # fits A4's printable width (180 mm at 96 px per inch is 680 px)
HEIGHT = 300
SYMBOLS = {"straight_knee": "circle", "bent_knee": "square", "energy_storage": "diamond"}
DASHES = {"straight_knee": "solid", "bent_knee": "dash", "energy_storage": "dot"}
# Dark enough to read when printed in grey.
COLOURS = {"straight_knee": "#1f4e79", "bent_knee": "#7a3b00", "energy_storage": "#2e6b30",
           "morning": "#5b2a86", "other": "#444444"}
BAND_GREYS = ("#ececec", "#d0d0d0", "#a8a8a8")
CONFIG = {"displayModeBar": False, "staticPlot": False, "responsive": False}


class Chart(BaseModel):
    """A chart's HTML (a div and the script that draws it) and its id."""

    model_config = ConfigDict(frozen=True)

    id: str
    title: str
    html: str


def _layout(fig: go.Figure, title: str, y_title: str, **kw: Any) -> None:
    yaxis = {"title": {"text": y_title}, "gridcolor": "#ddd", "zeroline": False,
             **kw.pop("yaxis", {})}
    # The title is the figure's caption in the page; plotly's own is kept
    # as the chart's accessible name only.
    fig.update_layout(
        meta={"title": title},
        width=WIDTH, height=HEIGHT, margin={"l": 56, "r": 16, "t": 16, "b": 40},
        paper_bgcolor="white", plot_bgcolor="white",
        font={"family": "DejaVu Sans, Arial, sans-serif", "size": 11, "color": "#111"},
        legend={"orientation": "h", "y": -0.18, "x": 0},
        yaxis=yaxis,
        xaxis={"type": "date", "gridcolor": "#eee", "tickformat": "%d %b", **_day_ticks(fig)},
        **kw,
    )


# Up to this many distinct days, each gets its own tick; beyond, plotly's
# automatic ticks are a day or more apart anyway.
_FEW_DAYS = 10


def _day_ticks(fig: go.Figure) -> dict[str, Any]:
    """Ticks on the days the chart shows, when they are few. The data are
    whole days, but over a span of a day or two plotly ticks every 12 hours,
    and "%d %b" then labels one day twice (a first session's report)."""
    days = sorted({x for trace in fig.data for x in (trace.x or ()) if isinstance(x, str)})
    if not days or len(days) > _FEW_DAYS:
        return {}
    return {"tickmode": "array", "tickvals": days}


def _html(fig: go.Figure, chart_id: str, title: str) -> Chart:
    html = pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id=chart_id,
                       config=CONFIG, default_width=f"{WIDTH}px",
                       default_height=f"{HEIGHT}px")
    return Chart(id=chart_id, title=title, html=html)


def _iso(values: Sequence[Any]) -> list[str]:
    return [v.isoformat() for v in values]


def rung_chart(data: ReportData) -> Chart | None:
    if not data.timelines:
        return None
    fig = go.Figure()
    for tl in data.timelines:
        fig.add_trace(go.Scatter(
            x=_iso([r.date for r in tl.rows]), y=[r.rung for r in tl.rows],
            name=tl.title, mode="lines+markers", line_shape="hv",
            line={"color": COLOURS[tl.track], "dash": DASHES[tl.track]},
            marker={"symbol": SYMBOLS[tl.track], "size": 9},
            customdata=[[r.done_text, r.load_kg] for r in tl.rows],
            hovertemplate="%{x}: rung %{y}, %{customdata[0]}, +%{customdata[1]} kg"
                          "<extra>%{fullData.name}</extra>",
        ))
    _layout(fig, "Rung by session", "rung",
            yaxis={"range": [-0.5, max(data.rungs) + 0.5], "tickvals": list(data.rungs)})
    return _html(fig, "chart-rung", "Rung by session")


def load_chart(data: ReportData) -> Chart | None:
    if not any(r.load_kg for tl in data.timelines for r in tl.rows):
        return None
    fig = go.Figure()
    for tl in data.timelines:
        fig.add_trace(go.Scatter(
            x=_iso([r.date for r in tl.rows]), y=[r.load_kg for r in tl.rows],
            name=tl.title, mode="lines+markers",
            line={"color": COLOURS[tl.track], "dash": DASHES[tl.track]},
            marker={"symbol": SYMBOLS[tl.track], "size": 9},
        ))
    _layout(fig, "External load by session", "kg")
    return _html(fig, "chart-load", "External load by session")


def pain_chart(data: ReportData) -> Chart | None:
    if not data.pain:
        return None
    b = data.bands
    fig = go.Figure()
    bands = [(0, b.safe_max + 0.5, f"0–{b.safe_max} safe"),
             (b.safe_max + 0.5, b.acceptable_max + 0.5,
              f"{b.safe_max + 1}–{b.acceptable_max} acceptable"),
             (b.acceptable_max + 0.5, b.scale_max, f"above {b.acceptable_max}: too much")]
    for (low, high, label), grey in zip(bands, BAND_GREYS, strict=True):
        fig.add_hrect(y0=low, y1=high, fillcolor=grey, opacity=0.5, line_width=0,
                      layer="below", annotation_text=label, annotation_position="top left",
                      annotation_font={"size": 10, "color": "#111"})
    for track in data.tracks_with_pain:
        points = [p for p in data.pain if track in p.during]
        fig.add_trace(go.Scatter(
            x=_iso([p.date for p in points]), y=[p.during[track] for p in points],
            name=f"during: {TRACK_TITLES[track]}", mode="lines+markers",
            line={"color": COLOURS[track], "dash": DASHES[track]},
            marker={"symbol": SYMBOLS[track], "size": 9},
        ))
    morning = [p for p in data.pain if p.next_morning is not None]
    if morning:
        fig.add_trace(go.Scatter(
            x=_iso([p.date for p in morning]), y=[p.next_morning for p in morning],
            name="next morning (after the session that day)", mode="lines+markers",
            line={"color": COLOURS["morning"], "dash": "longdash", "width": 2},
            marker={"symbol": "x", "size": 10},
        ))
    _layout(fig, "Pain (0–10) against the pain-monitoring model", "pain 0–10",
            yaxis={"range": [0, b.scale_max], "dtick": 1})
    return _html(fig, "chart-pain", "Pain against the pain-monitoring model")


def heel_raise_chart(data: ReportData) -> Chart | None:
    rows = [a for a in data.assessments if a.involved is not None]
    if not rows:
        return None
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=_iso([a.date for a in rows]), y=[a.involved for a in rows], name="involved side",
        mode="lines+markers+text", text=[str(a.involved) for a in rows],
        textposition="bottom center", line={"color": COLOURS["straight_knee"]},
        marker={"symbol": "circle", "size": 9}))
    both = [a for a in rows if a.uninvolved is not None]
    if both:
        fig.add_trace(go.Scatter(
            x=_iso([a.date for a in both]), y=[a.uninvolved for a in both],
            name="uninvolved side", mode="lines+markers+text",
            text=[str(a.uninvolved) for a in both], textposition="top center",
            line={"color": COLOURS["other"], "dash": "dash"},
            marker={"symbol": "square-open", "size": 9}))
    top = max([a.involved or 0 for a in rows] + [a.uninvolved or 0 for a in rows])
    _layout(fig, "Single-leg heel-raise test (reps to fatigue)", "reps to fatigue",
            yaxis={"range": [0, top * 1.2 + 1]})
    return _html(fig, "chart-heel-raise", "Single-leg heel-raise test")


def scores_chart(data: ReportData) -> Chart | None:
    lsi = [a for a in data.assessments if a.lsi is not None]
    visa = [a for a in data.assessments if a.visa_a is not None]
    if not lsi and not visa:
        return None
    fig = go.Figure()
    if lsi:
        fig.add_trace(go.Scatter(
            x=_iso([a.date for a in lsi]), y=[a.lsi for a in lsi],
            name="heel-raise limb symmetry, %", mode="lines+markers",
            line={"color": COLOURS["straight_knee"]}, marker={"symbol": "circle", "size": 9}))
    if visa:
        fig.add_trace(go.Scatter(
            x=_iso([a.date for a in visa]), y=[a.visa_a for a in visa], name="VISA-A (0–100)",
            mode="lines+markers", line={"color": COLOURS["bent_knee"], "dash": "dash"},
            marker={"symbol": "triangle-up", "size": 10}))
    _layout(fig, "Limb symmetry and VISA-A", "0–100",
            yaxis={"range": [0, 105]})
    return _html(fig, "chart-scores", "Limb symmetry and VISA-A")


def projection_chart(data: ReportData) -> Chart | None:
    if not data.projection:
        return None
    fig = go.Figure()
    for track in TRACK_TITLES:
        weeks = [r for r in data.projection if r.rungs.get(track) is not None]
        if not weeks:
            continue
        fig.add_trace(go.Scatter(
            x=_iso([r.review_date for r in weeks]), y=[r.rungs[track] for r in weeks],
            name=TRACK_TITLES[track], mode="lines+markers", line_shape="hv",
            line={"color": COLOURS[track], "dash": DASHES[track]},
            marker={"symbol": SYMBOLS[track], "size": 8}))
    _layout(fig, "Projected course if every session goes to plan", "rung",
            yaxis={"range": [-0.5, max(data.rungs) + 0.5], "tickvals": list(data.rungs)})
    return _html(fig, "chart-projection", "Projected course")


def all_charts(data: ReportData) -> dict[str, Chart]:
    charts = [rung_chart(data), load_chart(data), pain_chart(data), heel_raise_chart(data),
              scores_chart(data), projection_chart(data)]
    return {c.id: c for c in charts if c is not None}
