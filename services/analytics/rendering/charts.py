"""Inline SVG charts of the report: no script, no external file, so the page stands alone."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from html import escape

from services.analytics.report import Cohort, PointsMonth, TierMonth, TriggerMessages

# Series colours; the page's legend and the tests read the same constants.
ISSUED, REDEEMED, EXPIRED = "#2563eb", "#16a34a", "#dc2626"
SENT, CONVERTED = "#64748b", "#f59e0b"
TIER_COLOURS = ("#0ea5e9", "#a855f7", "#eab308", "#14b8a6", "#f97316", "#ec4899", "#84cc16")
NO_TIER = "#cbd5e1"
HEAT_LOW, HEAT_HIGH = (239, 246, 255), (29, 78, 216)
INK = "#1e293b"


def _svg(width: int, height: int, body: list[str], label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}" '
        f'font-family="system-ui, sans-serif" font-size="12">{"".join(body)}</svg>'
    )


def _text(x: float, y: float, text: str, *, anchor: str = "middle", fill: str = INK) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{fill}">{escape(text)}</text>'
    )


def _rect(x: float, y: float, w: float, h: float, fill: str, title: str) -> str:  # noqa: PLR0917 - a box is four numbers
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{max(h, 0):.1f}" '
        f'fill="{fill}"><title>{escape(title)}</title></rect>'
    )


def heat_colour(percent: Decimal | None) -> str:
    """From pale (0%) to deep blue (100%); grey when there is no value."""
    if percent is None:
        return "#f1f5f9"
    share = min(max(float(percent) / 100, 0.0), 1.0)
    r, g, b = (round(lo + (hi - lo) * share) for lo, hi in zip(HEAT_LOW, HEAT_HIGH, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


def cohort_heat_map(cohorts: Sequence[Cohort]) -> str:
    """Rows: acquisition months; columns: months since; cells: share still ordering."""
    columns = max((len(c.retention) for c in cohorts), default=0)
    cell_w, cell_h, left, top = 56, 26, 130, 30
    width, height = left + cell_w * max(columns, 1) + 10, top + cell_h * max(len(cohorts), 1) + 10
    body = [_text(left + cell_w * k + cell_w / 2, top - 10, f"M{k}") for k in range(columns)]
    for row, cohort in enumerate(cohorts):
        y = top + row * cell_h
        body.append(_text(left - 8, y + 17, f"{cohort.month} ({cohort.customers})", anchor="end"))
        for k, percent in enumerate(cohort.retention):
            x = left + k * cell_w
            shown = "n/a" if percent is None else f"{percent:.0f}%"
            title = f"{cohort.month}, month {k}: {shown} ({cohort.ordering[k]} ordering)"
            body.append(_rect(x, y, cell_w - 2, cell_h - 2, heat_colour(percent), title))
            dark = percent is not None and percent > 55
            body.append(_text(x + cell_w / 2 - 1, y + 17, shown, fill="#fff" if dark else INK))
    if not cohorts:
        body.append(_text(width / 2, top + 17, "no customers acquired in the period"))
    return _svg(width, height, body, "Cohort retention heat map")


def tier_colours(tiers: Sequence[str]) -> dict[str, str]:
    named = [t for t in tiers if t != "none"]
    colours = {t: TIER_COLOURS[i % len(TIER_COLOURS)] for i, t in enumerate(named)}
    colours["none"] = NO_TIER
    return colours


def _bars_frame(labels: Sequence[str], top_value: float, height: int) -> tuple[list[str], int]:
    """Axis labels along the bottom and a scale on the left; returns the body and plot width."""
    slot = 70
    width = 60 + slot * max(len(labels), 1)
    body = [f'<line x1="56" y1="{height - 30}" x2="{width}" y2="{height - 30}" stroke="{INK}"/>']
    body += [_text(60 + slot * i + slot / 2, height - 12, label) for i, label in enumerate(labels)]
    body.append(_text(52, 24, f"{top_value:,.0f}", anchor="end"))
    body.append(_text(52, height - 30, "0", anchor="end"))
    return body, width


def tier_distribution(months: Sequence[TierMonth]) -> str:
    """Stacked bars: customers per tier at each month's end."""
    tiers = sorted({t for m in months for t in m.customers}, key=lambda t: (t == "none", t))
    colours = tier_colours(tiers)
    top = max((sum(m.customers.values()) for m in months), default=0) or 1
    height, plot = 240, 190
    body, width = _bars_frame([m.month for m in months], top, height)
    for i, month in enumerate(months):
        y = float(height - 30)
        for tier in tiers:
            count = month.customers.get(tier, 0)
            h = plot * count / top
            y -= h
            body.append(_rect(60 + 70 * i + 12, y, 46, h, colours[tier], f"{tier}: {count}"))
    return _svg(width, height, body, "Customers per tier at each month's end")


def points_flow(months: Sequence[PointsMonth]) -> str:
    """Grouped bars per month: points issued, redeemed and expired."""
    top = max((max(m.issued, m.redeemed, m.expired) for m in months), default=0) or 1
    height, plot = 240, 190
    body, width = _bars_frame([m.month for m in months], top, height)
    for i, month in enumerate(months):
        series = (
            (month.issued, ISSUED, "issued"),
            (month.redeemed, REDEEMED, "redeemed"),
            (month.expired, EXPIRED, "expired"),
        )
        for j, (value, colour, name) in enumerate(series):
            h = plot * value / top
            x = 60 + 70 * i + 8 + j * 18
            body.append(_rect(x, height - 30 - h, 16, h, colour, f"{name}: {value:,}"))
    return _svg(width, height, body, "Points issued, redeemed and expired per month")


def conversions(messages: Sequence[TriggerMessages]) -> str:
    """Per trigger: messages sent and those followed by an order within the window."""
    rows = [m for m in messages if m.sent > 0]
    top = max((m.sent for m in rows), default=0) or 1
    left, bar_w, row_h = 150, 380, 34
    height = 20 + row_h * max(len(rows), 1)
    body = []
    for i, m in enumerate(rows):
        y = 10 + i * row_h
        body.append(_text(left - 8, y + 19, m.trigger, anchor="end"))
        body.append(_rect(left, y + 4, bar_w * m.sent / top, 12, SENT, f"sent: {m.sent}"))
        converted_w = bar_w * m.converted / top
        body.append(_rect(left, y + 17, converted_w, 12, CONVERTED, f"converted: {m.converted}"))
        shown = "n/a" if m.conversion_rate is None else f"{m.conversion_rate}%"
        body.append(
            _text(left + bar_w + 8, y + 19, f"{m.converted}/{m.sent} ({shown})", anchor="start")
        )
    if not rows:
        body.append(_text(left + bar_w / 2, 30, "no messages sent in the period"))
    return _svg(left + bar_w + 130, height, body, "Messages sent and converted per trigger")
