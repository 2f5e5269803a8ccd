"""The analytics HTTP API: the report of a period and segment, as JSON or as an HTML file.

Every report route needs an X-API-Key with the `read` scope: a shop's key sees its own shop's
report only (a coalition's key, the coalition's); a platform key (LOYALTY_ANALYTICS_API_KEY, or
one the shops service made) sees one shop's or coalition's (`shop`) or the whole platform's.
Errors are RFC 9457 problem documents (application/problem+json).
"""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse
from starlette.exceptions import HTTPException

from services.analytics.adapters.overview_cache import OverviewKey
from services.analytics.asking import MAX_ATTRIBUTION_DAYS, Refusal, refusals, unknown_in
from services.analytics.building import build_report
from services.analytics.overview import Overview
from services.analytics.overviews import OverviewSource, answer
from services.analytics.rendering.page import render_html
from services.analytics.report import Report, ReportQuery, Segment
from services.analytics.settings import AnalyticsSettings
from shared.api_inputs import Day, PlainText
from shared.callers import Caller, require_scope
from shared.events import CURRENCY_MINOR_UNITS, Currency
from shared.problems import InvalidField, install_problem_handlers, problems
from shared.runtime import Runtime, service_api

COHORT_PATTERN = r"^(19[7-9][0-9]|2[0-9]{3})-(0[1-9]|1[0-2])$"


def refuse(found: list[Refusal]) -> None:
    """A 422 naming the first parameter found at fault, if any."""
    if found:
        raise InvalidField(f"query.{found[0].parameter}", found[0].message)


Reader = Annotated[Caller, Depends(require_scope("read"))]


def shop_for(caller: Caller, shop: str | None) -> str | None:
    """The shop a report is about: the one asked for (none: the platform) for a platform key;
    a shop key's own, and a 404 when it asks for another (never telling that it exists)."""
    if caller.shop_id is None:
        return shop
    if shop is not None and shop != caller.shop_id:
        raise HTTPException(404, "not found")
    return caller.shop_id


def parse_query(
    *,
    request: Request,
    caller: Reader,
    start: Annotated[Day, Query(alias="from", description="First day of the period.")],
    end: Annotated[
        Day,
        Query(alias="to", description="Day after the last (exclusive); later than `from`."),
    ],
    shop: Annotated[
        PlainText | None,
        Query(
            max_length=128,
            description="The shop (a platform key; none: every shop). A shop's key sees its own"
            " shop only: another is a 404.",
        ),
    ] = None,
    tier: Annotated[PlainText | None, Query(max_length=128)] = None,
    cohort: Annotated[str | None, Query(pattern=COHORT_PATTERN)] = None,
    currency: Annotated[Currency | None, Query()] = None,
    attribution_days: Annotated[int | None, Query(ge=1, le=MAX_ATTRIBUTION_DAYS)] = None,
) -> ReportQuery:
    """The dependency that reads a ReportQuery from the query string."""
    settings: AnalyticsSettings = request.app.state.settings
    currency = currency or settings.analytics_currency
    refuse(
        refusals(start, end, cohort=cohort, currency=currency, attribution_days=attribution_days)
    )
    return ReportQuery(
        start=start,
        end=end,
        time_zone=settings.analytics_time_zone,
        segment=Segment(shop=shop_for(caller, shop), tier=tier, cohort=cohort, currency=currency),
        churn_after_days=settings.analytics_churn_after_days,
        attribution_days=attribution_days or settings.analytics_attribution_days,
    )


def parse_overview_key(
    *,
    request: Request,
    caller: Reader,
    shop: Annotated[
        PlainText | None,
        Query(
            max_length=128,
            description="The shop or coalition, as for the report (a platform key; none: every"
            " shop). A shop's key sees its own shop only: another is a 404.",
        ),
    ] = None,
    time_zone: Annotated[
        PlainText | None,
        Query(
            max_length=64,
            description="The IANA zone whose today and month these are (default:"
            " LOYALTY_ANALYTICS_TIME_ZONE).",
        ),
    ] = None,
    currency: Annotated[Currency | None, Query()] = None,
) -> OverviewKey:
    """The dependency that reads whose overview, in which zone and currency, is asked for."""
    settings: AnalyticsSettings = request.app.state.settings
    currency = currency or settings.analytics_currency
    zone = time_zone or settings.analytics_time_zone
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidField("query.time_zone", f"unknown time zone {zone!r}") from None
    if currency not in CURRENCY_MINOR_UNITS:
        raise InvalidField("query.currency", f"unknown currency {currency!r}")
    return OverviewKey(shop_for(caller, shop), zone, currency)


def overview_source(runtime: Runtime, settings: AnalyticsSettings) -> OverviewSource:
    return OverviewSource(
        schema=runtime.definition.schema,
        clock=runtime.clock,
        point_values=settings.analytics_point_values,
        churn_after_days=settings.analytics_churn_after_days,
    )


# Module level: FastAPI resolves the (postponed) annotations of route functions here.
ParsedQuery = Annotated[ReportQuery, Depends(parse_query)]
ParsedOverviewKey = Annotated[OverviewKey, Depends(parse_overview_key)]


def build_api(runtime: Runtime, *, settings: AnalyticsSettings) -> FastAPI:
    """The FastAPI app served for the paths the operational routes do not take."""
    api = service_api(
        "analytics",
        "Retention, value, programme and message figures by period and segment.",
    )
    api.state.settings = settings

    install_problem_handlers(api, invalid_field="the request does not make a report")

    async def report(query: ReportQuery) -> Report:
        value = settings.analytics_point_values.get(query.segment.currency)
        async with runtime.require_pool().acquire() as conn:
            if unknown := await unknown_in(conn, runtime.definition.schema, query.segment):
                # No report exists for a segment no fact names (it would be all zeros).
                raise HTTPException(404, unknown[0].message)
            return await build_report(
                conn,
                runtime.definition.schema,
                query,
                point_value=value,
                now=runtime.clock.now(),
            )

    @api.get("/v1/report", responses=problems(401, 403, 404, 422, 503))
    async def get_report(query: ParsedQuery) -> Report:
        """Every figure of the period [from, to) for the segment, as JSON."""
        return await report(query)

    @api.get(
        "/v1/report.html", response_class=HTMLResponse, responses=problems(401, 403, 404, 422, 503)
    )
    async def get_report_html(query: ParsedQuery) -> HTMLResponse:
        """The same report as one self-contained HTML page with charts (no external files)."""
        return HTMLResponse(render_html(await report(query)))

    source = overview_source(runtime, settings)

    @api.get("/v1/overview", responses=problems(401, 403, 404, 422, 503))
    async def get_overview(key: ParsedOverviewKey) -> Overview:
        """Today's and this month's figures at a glance, in the zone's days: members, points
        issued, redeemed and outstanding, tiers, the last 30 days' points and the messages.
        Answered from the last computation (at most LOYALTY_ANALYTICS_OVERVIEW_EVERY_S old
        while it is asked for; `as_of` says when), computed at once the first time. A 422
        names a `time_zone` that is not an IANA zone, or a currency that is not an active
        ISO 4217 code."""
        pool = runtime.require_pool()
        async with pool.acquire() as conn:
            segment = Segment(shop=key.shop, currency=key.currency)
            if unknown := await unknown_in(conn, runtime.definition.schema, segment):
                raise HTTPException(404, unknown[0].message)
        return await answer(pool, source, key)

    return api
