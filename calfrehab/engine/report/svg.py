"""Line charts as inline SVG, drawn in Python when a page is generated.

Plain code rather than a charting library: the report needs a handful of
dated line charts, and drawing them here keeps the page free of script
(plotly's charts are drawn by 4.6 MB of JavaScript, blank wherever scripts
are blocked), keeps the output byte-for-byte a function of the data (no
random element ids, no embedded fonts), and lets every point carry its
value (``data-x``, ``data-y``) for the tests and a ``<title>`` for a screen
reader. pygal would add its own script for tooltips; matplotlib would add a
large dependency and embed glyph outlines.

Readable without colour: each series has its own dash and marker shape.
Lines that coincide stay visible: the first series is drawn widest and each
later one narrower on top of it, with smaller markers, so a line lying on
another shows as a core inside a casing. A value of zero is drawn whole: the
plot keeps a margin inside its axes. Bands (the pain model's) are told apart
by their boundary lines and labels, whose contrast with every fill is at
least 3:1 (WCAG 1.4.11; a test computes it), not by the fills alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from math import ceil

from markupsafe import Markup, escape
from pydantic import BaseModel, ConfigDict

# The drawing's own units; the SVG scales to its container's width.
WIDTH, HEIGHT = 440, 210
LEFT, RIGHT, TOP, BOTTOM = 48, 10, 10, 32
INSET = 9  # inside the axes, so a marker at the range's end is drawn whole
FONT = 15
# Up to this many points a series' markers each carry a <title> (a tooltip
# and a screen reader's text); beyond, the table beside the chart does.
FEW_POINTS = 16

# Dark enough to read printed in grey; each also has a dash and a marker.
COLOURS = ("#1f4e79", "#8a4500", "#2e6b30", "#5b2a86")
DASHES = ("", "9 5", "3 4", "12 4 3 4")
LINE_WIDTHS = (5.0, 3.0, 1.8, 1.2)
MARKERS = ("circle", "square", "diamond", "triangle")
MARKER_SIZES = (7.0, 5.0, 4.0, 3.5)
# Band fills (light, for print) and the line that bounds each band.
BAND_FILLS = ("#ffffff", "#ebebeb", "#d4d4d4")
BAND_EDGE = "#5e5e5e"
TEXT = "#111111"
GRID = "#c8c8c8"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class Point(_Model):
    x: date
    y: float
    label: str | None = None  # printed beside the point (e.g. a count)


class Series(_Model):
    key: str  # stable, for tests and styles: "straight_knee", "involved"
    name: str  # the legend's words
    points: list[Point]
    step: bool = False  # a value that holds until the next (a rung)


class Band(_Model):
    low: float
    high: float
    label: str


class ChartSpec(_Model):
    """What a chart shows; :func:`chart_svg` draws it."""

    id: str
    title: str
    y_label: str
    y_min: float
    y_max: float
    y_ticks: list[float]
    series: list[Series]
    bands: list[Band] = []
    # y tick labels in words (a rung's exercise), else the number
    y_tick_labels: dict[float, str] = {}


def nice_ticks(top: float, most: int = 6) -> list[float]:
    """0 up to at least ``top`` in a round step: 1, 2, 5, 10, 20, 25, 50 ..."""
    top = max(top, 1.0)
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500):
        if ceil(top / step) <= most:
            return [float(step * i) for i in range(ceil(top / step) + 1)]
    step = ceil(top / most)
    return [float(step * i) for i in range(most + 1)]


def _num(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def _day(d: date) -> str:
    return f"{d.day} {d:%b}"


class _Axes:
    def __init__(self, spec: ChartSpec, days: Sequence[date]) -> None:
        self.spec = spec
        self.first, self.last = min(days), max(days)
        self.x0, self.x1 = LEFT + INSET, WIDTH - RIGHT - INSET
        self.y0, self.y1 = HEIGHT - BOTTOM - INSET, TOP + INSET

    def x(self, d: date) -> float:
        span = (self.last - self.first).days
        if span == 0:
            return (self.x0 + self.x1) / 2
        return self.x0 + (self.x1 - self.x0) * (d - self.first).days / span

    def y(self, v: float) -> float:
        lo, hi = self.spec.y_min, self.spec.y_max
        v = min(max(v, lo), hi)
        return self.y0 + (self.y1 - self.y0) * (v - lo) / (hi - lo)


def _marker(kind: str, cx: float, cy: float, size: float, colour: str) -> str:
    if kind == "circle":
        return f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{size:.1f}" fill="#fff" ' \
               f'stroke="{colour}" stroke-width="2.5"'
    if kind == "square":
        return (f'<rect x="{cx - size:.1f}" y="{cy - size:.1f}" width="{2 * size:.1f}" '
                f'height="{2 * size:.1f}" fill="{colour}"')
    if kind == "diamond":
        return (f'<path d="M{cx:.1f} {cy - size * 1.3:.1f}L{cx + size * 1.3:.1f} {cy:.1f}'
                f'L{cx:.1f} {cy + size * 1.3:.1f}L{cx - size * 1.3:.1f} {cy:.1f}Z" '
                f'fill="#fff" stroke="{colour}" stroke-width="1.6"')
    return (f'<path d="M{cx:.1f} {cy - size * 1.2:.1f}L{cx + size * 1.1:.1f} {cy + size:.1f}'
            f'L{cx - size * 1.1:.1f} {cy + size:.1f}Z" fill="{colour}"')


def _x_ticks(days: Sequence[date]) -> list[date]:
    distinct = sorted(set(days))
    if len(distinct) <= 7:
        return distinct
    # About six labels, evenly spread over the course, first and last included.
    first, last = distinct[0], distinct[-1]
    span = (last - first).days
    picks = [first + (last - first) * i / 5 for i in range(6)] if span else [first]

    def nearest(pick: date) -> date:
        return min(distinct, key=lambda day: abs((day - pick).days))

    return sorted({nearest(p) for p in picks})


def style(index: int) -> tuple[str, str, float, str, float]:
    """Colour, dash, line width, marker and marker size of the n-th series."""
    i = index % len(COLOURS)
    return COLOURS[i], DASHES[i], LINE_WIDTHS[i], MARKERS[i], MARKER_SIZES[i]


def chart_svg(spec: ChartSpec) -> Markup:
    """The chart as an ``<svg>`` element followed by its legend (a ``<ul>``).

    Every value is escaped; the markup is safe to put in a page as it is.
    """
    days = [p.x for s in spec.series for p in s.points]
    if not days:
        raise ValueError(f"chart {spec.id} has no point")
    ax = _Axes(spec, days)
    out: list[str] = [
        f'<svg class="chart-svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{spec.id}-t" xmlns="http://www.w3.org/2000/svg" '
        f'font-family="DejaVu Sans, Arial, sans-serif" font-size="{FONT}">',
        f'<title id="{spec.id}-t">{escape(spec.title)}</title>',
    ]
    left, right = LEFT, WIDTH - RIGHT
    top, bottom = TOP, HEIGHT - BOTTOM
    # Bands, then their edges and labels (over the fills, under the data).
    for i, band in enumerate(spec.bands):
        ya, yb = ax.y(band.high), ax.y(band.low)
        if band.high >= spec.y_max:
            ya = top
        if band.low <= spec.y_min:
            yb = bottom
        fill = BAND_FILLS[min(i, len(BAND_FILLS) - 1)]
        out.append(f'<rect class="band" x="{left}" y="{ya:.1f}" width="{right - left}" '
                   f'height="{yb - ya:.1f}" fill="{fill}"/>')
    for i, band in enumerate(spec.bands):
        ya = top if band.high >= spec.y_max else ax.y(band.high)
        if i < len(spec.bands) - 1:
            out.append(f'<line class="band-edge" x1="{left}" x2="{right}" y1="{ya:.1f}" '
                       f'y2="{ya:.1f}" stroke="{BAND_EDGE}" stroke-width="1.5" '
                       'stroke-dasharray="6 3"/>')
        out.append(f'<text class="band-label" x="{right - 4}" y="{ya + FONT + 1:.1f}" '
                   f'text-anchor="end" fill="{TEXT}" stroke="#fff" stroke-width="3" '
                   f'paint-order="stroke">{escape(band.label)}</text>')
    # Axes and grid.
    for t in spec.y_ticks:
        y = ax.y(t)
        label = spec.y_tick_labels.get(t, _num(t))
        if not spec.bands:
            out.append(f'<line x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" '
                       f'stroke="{GRID}" stroke-width="0.8"/>')
        out.append(f'<text x="{left - 5}" y="{y + 4:.1f}" text-anchor="end" '
                   f'fill="{TEXT}">{escape(label)}</text>')
    out.append(f'<path d="M{left} {top}V{bottom}H{right}" fill="none" stroke="{TEXT}" '
               'stroke-width="1"/>')
    for d in _x_ticks(days):
        x = ax.x(d)
        # A label near an edge is anchored inside the drawing, not cut off.
        anchor = ("end" if x > right - 30 else "start" if x < left + 20 and x > ax.x0 + 1
                  else "middle")
        tx = min(x + 6, right) if anchor == "end" else x
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{bottom}" y2="{bottom + 4}" '
                   f'stroke="{TEXT}"/><text x="{tx:.1f}" y="{bottom + 20}" '
                   f'text-anchor="{anchor}" fill="{TEXT}">{_day(d)}</text>')
    out.append(f'<text transform="translate(12 {(top + bottom) / 2:.0f}) rotate(-90)" '
               f'text-anchor="middle" fill="{TEXT}">{escape(spec.y_label)}</text>')
    # Series: the first widest, each later one narrower on top of it.
    for index, s in enumerate(spec.series):
        colour, dash, width, marker, size = style(index)
        pts = sorted(s.points, key=lambda p: p.x)
        coords = [(ax.x(p.x), ax.y(p.y)) for p in pts]
        if len(coords) > 1:
            path = f"M{coords[0][0]:.1f} {coords[0][1]:.1f}"
            for xb, yb in coords[1:]:
                path += f"H{xb:.1f}V{yb:.1f}" if s.step else f"L{xb:.1f} {yb:.1f}"
            dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
            out.append(f'<path class="line" data-series="{escape(s.key)}" d="{path}" fill="none" '
                       f'stroke="{colour}" stroke-width="{width}"{dash_attr} '
                       'stroke-linejoin="round"/>')
        # One marker drawn once at the origin, placed at each point.
        mark = f"{spec.id}-m{index}"
        out.append(f'<defs>{_marker(marker, 0, 0, size, colour)} id="{mark}">'
                   f'{_close(marker)}</defs>')
        few = len(pts) <= FEW_POINTS
        for p, (cx, cy) in zip(pts, coords, strict=True):
            title = (f"<title>{escape(s.name)}, {_day(p.x)}: {escape(p.label or _num(p.y))}"
                     "</title>" if few else "")
            out.append(f'<use class="pt" href="#{mark}" x="{cx:.1f}" y="{cy:.1f}" '
                       f'data-series="{escape(s.key)}" data-x="{p.x.isoformat()}" '
                       f'data-y="{_num(p.y)}">{title}</use>')
            if p.label is not None:
                above = index % 2 == 0
                ty = cy - size - 5 if above else cy + size + FONT + 2
                out.append(f'<text class="pt-label" x="{cx:.1f}" y="{ty:.1f}" '
                           f'text-anchor="middle" fill="{colour}" stroke="#fff" '
                           f'stroke-width="3" paint-order="stroke">{escape(p.label)}</text>')
    out.append("</svg>")
    out.append(_legend(spec))
    return Markup("".join(out))


def _close(marker: str) -> str:
    return {"circle": "</circle>", "square": "</rect>"}.get(marker, "</path>")


def _legend(spec: ChartSpec) -> str:
    items = []
    for index, s in enumerate(spec.series):
        colour, dash, width, marker, size = style(index)
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        swatch = (f'<svg class="swatch" viewBox="0 0 44 16" width="44" height="16" '
                  f'aria-hidden="true"><line x1="2" x2="42" y1="8" y2="8" stroke="{colour}" '
                  f'stroke-width="{min(width, 4)}"{dash_attr}/>'
                  + _marker(marker, 22, 8, min(size, 5), colour) + ">" + _close(marker)
                  + "</svg>")
        items.append(f"<li>{swatch}{escape(s.name)}</li>")
    return f'<ul class="legend">{"".join(items)}</ul>'


def luminance(colour: str) -> float:
    """WCAG relative luminance of ``#rrggbb``."""
    def channel(c: int) -> float:
        v = c / 255
        return v / 12.92 if v <= 0.03928 else float(((v + 0.055) / 1.055) ** 2.4)

    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)
