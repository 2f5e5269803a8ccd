"""A shop's home page: today and this month at a glance, from analytics' overview, with the
tier names of the shop's tiers programme in force and the money in the shop's locale; and the
month's full report, analytics' HTML page."""

from __future__ import annotations

import asyncio
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from services.console.adapters.upstream import JsonObject, UpstreamError
from services.console.auth import ShopAccess, require
from services.console.charts import Bar, Series, bar_chart, line_chart
from services.console.context import console_of
from services.console.domain.programme_forms import N_
from services.console.domain.roles import Capability
from services.console.formats import Formats
from services.console.pages.programme import in_force, with_times
from services.console.pages.shops import server_timing, shop_settings
from services.console.rendering import render, translations

router = APIRouter()

Viewer = Annotated[ShopAccess, Depends(require(Capability.VIEW))]

# Why notify did not send a message (shared/events/outputs.py SuppressionReason), in words.
REASONS = {
    "no_consent": N_("No consent"),
    "frequency_cap": N_("Too many messages recently"),
    "duplicate": N_("Already sent"),
    "quiet_hours_expired": N_("Stale after quiet hours"),
    "ordered": N_("The customer ordered"),
    "unsubscribed": N_("Unsubscribed"),
    "invalid_address": N_("No usable address"),
}


@dataclass(frozen=True)
class Glance:
    """The overview as the page shows it: the figures, and the charts with their tables."""

    overview: JsonObject
    as_of: datetime
    tiers: list[Bar]
    tiers_chart: Markup
    daily: list[dict[str, Any]]
    daily_chart: Markup
    reasons: list[tuple[str, int, int]]


@router.get("/shops/{shop}/")
async def home(request: Request, access: Viewer) -> Response:
    (shop, formats), names = await asyncio.gather(
        shop_settings(request, access), tier_names(access, console_of(request).now())
    )
    overview = await overview_of(access, shop)
    glance = None if overview is None else glance_of(overview, names, formats)
    context = {"access": access, "shop": shop, "shop_id": access.shop, "glance": glance}
    return render(request, "home.html", context, formats=formats, headers=server_timing(access))


# Analytics' HTML report is its own document: inline CSS and SVG, no script, nothing fetched.
REPORT_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none';"
    " base-uri 'none'; form-action 'none'"
)


@router.get("/shops/{shop}/report")
async def month_report(request: Request, access: Viewer) -> Response:
    """Analytics' full report of this month so far (the shop's days), as its HTML page."""
    shop, formats = await shop_settings(request, access)
    today = console_of(request).now().astimezone(ZoneInfo(formats.time_zone)).date()
    try:
        page = await access.api.report_html(today.replace(day=1), today + timedelta(days=1))
    except UpstreamError:
        context = {"access": access, "shop": shop, "shop_id": access.shop}
        # As every page whose source fails: the page stands and says so.
        return render(request, "report_unavailable.html", context, formats=formats)
    headers = {"Content-Security-Policy": REPORT_POLICY, **server_timing(access)}
    return HTMLResponse(page, headers=headers)


async def overview_of(access: ShopAccess, shop: JsonObject | None) -> JsonObject | None:
    """Analytics' overview in the shop's zone and currency; None when analytics does not
    answer (or knows nothing of the shop yet)."""
    zone = None if shop is None else str(shop["time_zone"])
    currency = None if shop is None else str(shop["currency"])
    try:
        return await access.api.overview(zone, currency)
    except UpstreamError:
        return None


async def tier_names(access: ShopAccess, now: datetime) -> dict[str, str]:
    """Tier code -> name in the shop's tiers programme in force (before the first version
    starts, that one's); empty when unknown."""
    try:
        versions = with_times(await access.api.versions("tiers"))
    except UpstreamError:
        return {}
    current = in_force(versions, now) or min(versions, key=lambda v: v["version"], default=None)
    if current is None:
        return {}
    try:
        document = tomllib.loads(str(current["toml"]))
    except tomllib.TOMLDecodeError:
        return {}
    tiers = document.get("tiers", [])
    return {
        str(t["code"]): str(t.get("name", t["code"]))
        for t in tiers
        if isinstance(t, dict) and "code" in t
    }


def glance_of(overview: JsonObject, names: dict[str, str], formats: Formats) -> Glance:
    """The charts of the overview, labelled in the reader's language and the shop's formats."""
    words = translations(formats.language)
    tiers = [
        Bar(
            label=words.gettext("No tier")
            if t["tier"] == "none"
            else names.get(t["tier"], t["tier"]),
            value=int(t["customers"]),
            shown=formats.points(int(t["customers"])),
        )
        for t in overview["tiers"]
    ]
    daily = [
        {"day": date.fromisoformat(d["day"]), "issued": d["issued"], "redeemed": d["redeemed"]}
        for d in overview["daily"]
    ]
    issued, redeemed = words.gettext("Points issued"), words.gettext("Points redeemed")
    totals = [formats.points(sum(d[k] for d in daily)) for k in ("issued", "redeemed")]
    daily_chart = line_chart(
        "daily-chart",
        words.gettext("Points issued and redeemed, last 30 days"),
        [formats.date(d["day"]) for d in daily],
        [
            Series(issued, [d["issued"] for d in daily]),
            Series(redeemed, [d["redeemed"] for d in daily]),
        ],
        shown=[f"{issued} {totals[0]}", f"{redeemed} {totals[1]}"],
    )
    return Glance(
        overview=overview,
        as_of=datetime.fromisoformat(overview["as_of"]),
        tiers=tiers,
        tiers_chart=bar_chart("tiers-chart", words.gettext("Customers per tier"), tiers),
        daily=daily,
        daily_chart=daily_chart,
        reasons=reasons_of(overview, words.gettext),
    )


def reasons_of(overview: JsonObject, gettext: Callable[[str], str]) -> list[tuple[str, int, int]]:
    """(reason in words, suppressed today, this month) for every reason of the month."""
    today = overview["today"]["messages"]["suppressed_by_reason"]
    month = overview["month"]["messages"]["suppressed_by_reason"]
    return [
        (gettext(REASONS[r]) if r in REASONS else r, int(today.get(r, 0)), int(n))
        for r, n in sorted(month.items())
    ]
