"""The report's SVG charts: each point where its value says, zero drawn
whole, coinciding lines kept visible, band edges that stand out."""

from __future__ import annotations

import re
from datetime import date, timedelta

from calfrehab.engine.report.svg import (
    BAND_EDGE,
    BAND_FILLS,
    HEIGHT,
    LINE_WIDTHS,
    MARKER_SIZES,
    TEXT,
    Band,
    ChartSpec,
    Point,
    Series,
    chart_svg,
    contrast,
    nice_ticks,
)

DAY = date(2026, 11, 2)


def _spec(values: list[list[float]], bands: list[Band] | None = None) -> ChartSpec:
    series = [Series(key=f"s{i}", name=f"series {i}",
                     points=[Point(x=DAY + timedelta(days=2 * k), y=v)
                             for k, v in enumerate(vs)])
              for i, vs in enumerate(values)]
    return ChartSpec(id="c", title="A <chart>", y_label="reps", y_min=0, y_max=10,
                     y_ticks=[0, 5, 10], series=series, bands=bands or [])


def _points(svg: str) -> list[tuple[str, str, float, float]]:
    out = []
    for m in re.finditer(r'<use ([^>]*class="pt"[^>]*)>', svg):
        attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', m.group(1)))
        out.append((attrs["data-series"], attrs["data-x"], float(attrs["data-y"]),
                    float(attrs["y"])))
    return out


def test_every_point_carries_its_value_and_sits_at_it() -> None:
    svg = str(chart_svg(_spec([[0, 5, 10], [3, 3, 3]])))
    pts = _points(svg)
    assert [(s, x, y) for s, x, y, _ in pts] == [
        ("s0", "2026-11-02", 0.0, ), ("s0", "2026-11-04", 5.0), ("s0", "2026-11-06", 10.0),
        ("s1", "2026-11-02", 3.0), ("s1", "2026-11-04", 3.0), ("s1", "2026-11-06", 3.0)]
    circles = [cy for s, _, _, cy in pts if s == "s0"]
    assert circles[0] > circles[1] > circles[2]  # higher values higher up
    # Zero is drawn whole: the marker's bottom is above the axis line.
    bottom_axis = HEIGHT - 30
    assert circles[0] + MARKER_SIZES[0] <= bottom_axis
    assert "&lt;chart&gt;" in svg and "<chart>" not in svg
    assert "<script" not in svg


def test_lines_that_coincide_stay_visible() -> None:
    # Each later series is drawn narrower on top of the one before, with a
    # smaller marker: a line lying on another shows inside it.
    assert list(LINE_WIDTHS) == sorted(LINE_WIDTHS, reverse=True)
    assert list(MARKER_SIZES) == sorted(MARKER_SIZES, reverse=True)
    svg = str(chart_svg(_spec([[2, 2, 2], [2, 2, 2]])))
    widths = [float(w) for w in re.findall(r'class="line"[^>]*stroke-width="([\d.]+)"', svg)]
    assert widths == [LINE_WIDTHS[0], LINE_WIDTHS[1]]


def test_band_edges_and_labels_stand_out_from_every_fill() -> None:
    for fill in BAND_FILLS:
        assert contrast(BAND_EDGE, fill) >= 3.0, fill
        assert contrast(TEXT, fill) >= 4.5, fill
    svg = str(chart_svg(_spec([[1, 4, 7]], [Band(low=0, high=3.5, label="0–3 safe"),
                                            Band(low=3.5, high=10, label="above 3")])))
    assert svg.count('class="band"') == 2 and svg.count('class="band-edge"') == 1
    assert "0–3 safe" in svg


def test_nice_ticks_cover_the_top() -> None:
    assert nice_ticks(26) == [0, 5, 10, 15, 20, 25, 30]
    assert nice_ticks(0) == [0, 1]
    assert nice_ticks(95)[-1] >= 95
