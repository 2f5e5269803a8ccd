"""The home page's charts: inline SVG whose title gives every figure, bars and lines drawn to
scale, and nothing of the labels left unescaped."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from services.console.charts import Bar, Series, bar_chart, line_chart

SVG = "{http://www.w3.org/2000/svg}"


def parsed(markup: str) -> ET.Element:
    return ET.fromstring(markup)


def test_a_bar_chart_is_an_image_named_by_its_title_with_every_figure() -> None:
    svg = parsed(
        bar_chart(
            "tiers",
            "Customers per tier",
            [Bar("Vàng", 120, "120"), Bar("Bạc", 1200, "1.200"), Bar("No tier", 0, "0")],
        )
    )
    assert svg.get("role") == "img"
    assert svg.get("aria-labelledby") == "tiers-title"
    title = svg.find(f"{SVG}title")
    assert title is not None
    assert title.get("id") == "tiers-title"
    assert title.text == "Customers per tier. Vàng: 120; Bạc: 1.200; No tier: 0"


def test_bars_are_as_long_as_their_values_relative_to_the_largest() -> None:
    svg = parsed(bar_chart("t", "T", [Bar("a", 50, "50"), Bar("b", 200, "200"), Bar("c", 0, "0")]))
    widths = [float(r.get("width", "")) for r in svg.iter(f"{SVG}rect")]
    assert widths == [80.0, 320.0, 0.0]


def test_labels_are_escaped() -> None:
    markup = bar_chart("t", "<b>&", [Bar('<script>"x"</script>', 1, "1")])
    assert "<script>" not in markup
    assert "<b>" not in markup
    assert parsed(markup).find(f"{SVG}title") is not None


def test_an_empty_bar_chart_still_renders() -> None:
    svg = parsed(bar_chart("t", "Nothing yet", []))
    title = svg.find(f"{SVG}title")
    assert title is not None
    assert title.text == "Nothing yet. "


def test_a_line_chart_draws_each_series_from_zero_to_the_largest_value() -> None:
    markup = line_chart(
        "daily",
        "Points, last 3 days",
        ["1 Dec", "2 Dec", "3 Dec"],
        [Series("Issued", [0, 50, 100]), Series("Redeemed", [10, 0, 20])],
        shown=["Issued 150", "Redeemed 30"],
    )
    svg = parsed(markup)
    lines = list(svg.iter(f"{SVG}polyline"))
    assert len(lines) == 2
    points = [
        [tuple(map(float, p.split(","))) for p in line.get("points", "").split()] for line in lines
    ]
    issued, redeemed = points
    # The plot runs from y=190 (zero) up to y=30 (the largest value, 100), x from 60 to 624.
    assert issued == [(60.0, 190.0), (342.0, 110.0), (624.0, 30.0)]
    assert [y for _, y in redeemed] == [174.0, 190.0, 158.0]
    title = svg.find(f"{SVG}title")
    assert title is not None
    assert title.text == (
        "Points, last 3 days (Issued / Redeemed, 1 Dec - 3 Dec): Issued 150 / Redeemed 30"
    )
    legend = [t.text for t in svg.iter(f"{SVG}text")]
    assert {"Issued", "Redeemed", "1 Dec", "3 Dec", "100", "0"} <= set(legend)


def test_a_line_chart_of_zeros_lies_on_the_axis() -> None:
    svg = parsed(line_chart("d", "T", ["a", "b"], [Series("Issued", [0, 0])]))
    line = next(svg.iter(f"{SVG}polyline"))
    assert re.findall(r",(\d+\.\d)", line.get("points", "")) == ["190.0", "190.0"]
