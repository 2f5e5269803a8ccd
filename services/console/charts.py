"""Charts drawn on the server as inline SVG: no script, no library, nothing fetched. Each is an
`<svg role="img">` named by its `<title>`, whose text gives every figure for screen readers;
pages put the same figures in a table beside it. Colours are presentation attributes, which
the console's CSP allows where a `style` attribute would be refused."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Final

from markupsafe import Markup

INK: Final = "#1d1d1f"
GRID: Final = "#d5d5da"
# Contrast of at least 3:1 against white for each (WCAG 1.4.11, graphics).
BAR: Final = "#7a1f3d"
SERIES: Final = ("#1a5fb4", "#a4001d")


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar: its label, its value, and the value as the page writes it."""

    label: str
    value: int
    shown: str


@dataclass(frozen=True, slots=True)
class Series:
    """One line: its name and a value per point of the x axis."""

    name: str
    values: Sequence[int]


def _svg(chart_id: str, width: int, height: int, title: str, body: list[str]) -> Markup:
    # Safe: every text and attribute value in it went through html.escape.
    return Markup(  # noqa: S704
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'aria-labelledby="{escape(chart_id)}-title" viewBox="0 0 {width} {height}" '
        f'width="100%" height="{height}" preserveAspectRatio="xMinYMin meet" '
        f'font-family="system-ui, sans-serif" font-size="13">'
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>{"".join(body)}</svg>'
    )


def _text(x: float, y: float, text: str, anchor: str = "start") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{INK}" aria-hidden="true">'
        f"{escape(text)}</text>"
    )


def bar_chart(chart_id: str, title: str, bars: Sequence[Bar]) -> Markup:
    """Horizontal bars, longest for the largest value, each labelled and with its figure; the
    title lists every label with its figure."""
    label_w, bar_w, row_h, top = 160, 320, 28, 8
    largest = max((b.value for b in bars), default=0)
    body = []
    for row, bar in enumerate(bars):
        y = top + row * row_h
        length = 0.0 if largest <= 0 else bar_w * max(bar.value, 0) / largest
        body.append(_text(0, y + 17, bar.label))
        body.append(
            f'<rect x="{label_w}" y="{y + 4}" width="{length:.1f}" height="{row_h - 8}" '
            f'fill="{BAR}"/>'
        )
        body.append(_text(label_w + length + 6, y + 17, bar.shown))
    height = top * 2 + row_h * max(len(bars), 1)
    figures = "; ".join(f"{b.label}: {b.shown}" for b in bars)
    return _svg(chart_id, label_w + bar_w + 90, height, f"{title}. {figures}", body)


def line_chart(
    chart_id: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    shown: Sequence[str] = (),
) -> Markup:
    """One line per series over the labels (days), from zero to the largest value; the first
    and last labels under the x axis, a legend on top. `shown` (the series' totals, as the page
    writes them) end the title, which names the series and the period."""
    left, right, top, bottom, plot_h = 60, 16, 30, 28, 160
    width = 640
    plot_w = width - left - right
    largest = max((v for s in series for v in s.values), default=0)
    scale = largest if largest > 0 else 1
    step = plot_w / max(len(labels) - 1, 1)
    body = [
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" '
        f'stroke="{GRID}"/>',
        f'<line x1="{left}" y1="{top}" x2="{width - right}" y2="{top}" stroke="{GRID}"/>',
        _text(left - 6, top + 4, str(largest), "end"),
        _text(left - 6, top + plot_h + 4, "0", "end"),
    ]
    if labels:
        body.append(_text(left, top + plot_h + 20, labels[0]))
        body.append(_text(width - right, top + plot_h + 20, labels[-1], "end"))
    for index, (line, colour) in enumerate(zip(series, SERIES, strict=False)):
        points = " ".join(
            f"{left + i * step:.1f},{top + plot_h - plot_h * max(v, 0) / scale:.1f}"
            for i, v in enumerate(line.values)
        )
        body.append(
            f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2.5"/>'
        )
        x = left + index * 200
        body.append(f'<rect x="{x}" y="4" width="14" height="14" fill="{colour}"/>')
        body.append(_text(x + 20, 16, line.name))
    names = " / ".join(s.name for s in series)
    period = f"{labels[0]} - {labels[-1]}" if labels else ""
    totals = f": {' / '.join(shown)}" if shown else ""
    described = f"{title} ({names}, {period}){totals}"
    return _svg(chart_id, width, top + plot_h + bottom, described, body)
