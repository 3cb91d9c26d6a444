"""The report's charts as data (:class:`ChartSpec`), drawn by :mod:`.svg`.

Every point is a value of the case (or of the simulator's projection), the
same numbers as the table beside the charts; the browser tests read them
back from the drawn page and compare them with the case file.
"""

from __future__ import annotations

from markupsafe import Markup
from pydantic import BaseModel, ConfigDict

from calfrehab.engine.explanation.wording import TRACK_TITLES
from calfrehab.engine.report.data import ReportData
from calfrehab.engine.report.svg import Band, ChartSpec, Point, Series, chart_svg, nice_ticks


class Chart(BaseModel):
    """A drawn chart: its id, title and markup (an ``<svg>`` and its legend)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    id: str
    title: str
    svg: Markup


def _rung_axis(data: ReportData) -> dict[str, object]:
    rungs = sorted(data.rungs)
    return {"y_min": float(min(rungs)), "y_max": float(max(rungs)),
            "y_ticks": [float(r) for r in rungs]}


def rung_spec(data: ReportData) -> ChartSpec | None:
    if not data.timelines:
        return None
    series = [Series(key=tl.track, name=tl.title, step=True,
                     points=[Point(x=r.date, y=r.rung) for r in tl.rows])
              for tl in data.timelines]
    return ChartSpec(id="chart-rung", title="Rung by session", y_label="rung",
                     series=series, **_rung_axis(data))  # type: ignore[arg-type]


def load_spec(data: ReportData) -> ChartSpec | None:
    if not any(r.load_kg for tl in data.timelines for r in tl.rows):
        return None
    series = [Series(key=tl.track, name=tl.title,
                     points=[Point(x=r.date, y=r.load_kg) for r in tl.rows])
              for tl in data.timelines]
    ticks = nice_ticks(max(p.y for s in series for p in s.points))
    return ChartSpec(id="chart-load", title="External load by session (kg)", y_label="kg",
                     y_min=0, y_max=ticks[-1], y_ticks=ticks, series=series)


def pain_spec(data: ReportData) -> ChartSpec | None:
    if not data.tracks_with_pain:
        return None
    b = data.bands
    series = []
    for track in data.tracks_with_pain:
        pts = [Point(x=p.date, y=p.during[track]) for p in data.pain if track in p.during]
        series.append(Series(key=track, name=f"{TRACK_TITLES[track]}", points=pts))
    bands = [Band(low=0, high=b.safe_max + 0.5, label=f"0–{b.safe_max} safe"),
             Band(low=b.safe_max + 0.5, high=b.acceptable_max + 0.5,
                  label=f"{b.safe_max + 1}–{b.acceptable_max} acceptable"),
             Band(low=b.acceptable_max + 0.5, high=b.scale_max,
                  label=f"above {b.acceptable_max}: too much")]
    return ChartSpec(id="chart-pain", title="Pain during exercise (0–10), worst on each track",
                     y_label="pain 0–10", y_min=0, y_max=b.scale_max,
                     y_ticks=[float(v) for v in range(0, b.scale_max + 1, 2)],
                     series=series, bands=bands)


def morning_spec(data: ReportData) -> ChartSpec | None:
    pts = [p for p in data.pain if p.next_morning is not None]
    if not pts:
        return None
    b = data.bands
    points = []
    previous: int | None = None
    for p in pts:
        assert p.next_morning is not None
        rise = p.next_morning - previous if previous is not None else 0
        label = f"+{rise}" if rise >= b.morning_rise else None
        points.append(Point(x=p.date, y=p.next_morning, label=label))
        previous = p.next_morning
    if b.morning_margin is not None:
        bands = [Band(low=0, high=b.morning_margin + 0.5, label=f"0–{b.morning_margin} settled"),
                 Band(low=b.morning_margin + 0.5, high=b.morning_max + 0.5,
                      label=f"{b.morning_margin + 1}–{b.morning_max}: every track holds")]
    else:
        bands = [Band(low=0, high=b.morning_max + 0.5, label=f"0–{b.morning_max} settled")]
    bands.append(Band(low=b.morning_max + 0.5, high=b.scale_max,
                      label=f"above {b.morning_max}: flare"))
    return ChartSpec(
        id="chart-morning",
        title=f"Next-morning pain (0–10); a rise of {b.morning_rise} or more is a flare "
              "(labelled)",
        y_label="pain 0–10", y_min=0, y_max=b.scale_max,
        y_ticks=[float(v) for v in range(0, b.scale_max + 1, 2)],
        series=[Series(key="morning", name="next morning, after that day's session",
                       points=points)], bands=bands)


def stiffness_spec(data: ReportData) -> ChartSpec | None:
    pts = [Point(x=p.date, y=p.stiffness_min) for p in data.pain if p.stiffness_min is not None]
    if not pts:
        return None
    ticks = nice_ticks(max(p.y for p in pts))
    return ChartSpec(id="chart-stiffness", title="Morning stiffness (minutes)",
                     y_label="minutes", y_min=0, y_max=ticks[-1], y_ticks=ticks,
                     series=[Series(key="stiffness", name="morning stiffness", points=pts)])


def heel_raise_spec(data: ReportData) -> ChartSpec | None:
    rows = [a for a in data.assessments if a.involved is not None]
    if not rows:
        return None
    series = [Series(key="involved", name="involved side",
                     points=[Point(x=a.date, y=a.involved or 0, label=str(a.involved))
                             for a in rows])]
    both = [a for a in rows if a.uninvolved is not None]
    if both:
        series.append(Series(key="uninvolved", name="uninvolved side",
                             points=[Point(x=a.date, y=a.uninvolved or 0,
                                           label=str(a.uninvolved)) for a in both]))
    ticks = nice_ticks(max(p.y for s in series for p in s.points))
    return ChartSpec(id="chart-heel-raise", title="Single-leg heel-raise test (reps to fatigue)",
                     y_label="reps", y_min=0, y_max=ticks[-1], y_ticks=ticks, series=series)


def scores_spec(data: ReportData) -> ChartSpec | None:
    lsi = [a for a in data.assessments if a.lsi is not None]
    visa = [a for a in data.assessments if a.visa_a is not None]
    if not lsi and not visa:
        return None
    series = []
    if lsi:
        series.append(Series(key="lsi", name="heel-raise limb symmetry, %",
                             points=[Point(x=a.date, y=a.lsi or 0) for a in lsi]))
    if visa:
        series.append(Series(key="visa_a", name="VISA-A (0–100)",
                             points=[Point(x=a.date, y=a.visa_a or 0) for a in visa]))
    return ChartSpec(id="chart-scores", title="Limb symmetry and VISA-A", y_label="0–100",
                     y_min=0, y_max=100, y_ticks=[0, 20, 40, 60, 80, 100], series=series)


def projection_spec(data: ReportData) -> ChartSpec | None:
    if not data.projection:
        return None
    series = []
    for track, title in TRACK_TITLES.items():
        weeks = [r for r in data.projection if r.rungs.get(track) is not None]
        if weeks:
            series.append(Series(key=track, name=title, step=True,
                                 points=[Point(x=r.review_date, y=r.rungs[track] or 0)
                                         for r in weeks]))
    if not series:
        return None
    return ChartSpec(id="chart-projection",
                     title="Projected rung if every session goes to plan", y_label="rung",
                     series=series, **_rung_axis(data))  # type: ignore[arg-type]


def all_specs(data: ReportData) -> list[ChartSpec]:
    specs = [rung_spec(data), load_spec(data), pain_spec(data), morning_spec(data),
             stiffness_spec(data), heel_raise_spec(data), scores_spec(data),
             projection_spec(data)]
    return [s for s in specs if s is not None]


def all_charts(data: ReportData) -> dict[str, Chart]:
    return {s.id: Chart(id=s.id, title=s.title, svg=chart_svg(s)) for s in all_specs(data)}
