"""What the analytics report may be asked for, over HTTP and from the CLI: days at the ends of
the calendar, unknown currencies, shops and tiers, and attribution windows are refused with a
problem naming the parameter (HTTP) or one line and exit code 2 (CLI), never a 500, a
traceback or a report of zeros."""

from __future__ import annotations

import asyncio
import subprocess
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer
from infrastructure import Endpoints
from notify_support import event_of
from support import encoded, eventually, loyalty_command, unique

from shared.problems import PROBLEM

SIGNED_UP = datetime(2025, 3, 10, 3, 0, tzinfo=UTC)
MARCH = {"from": "2025-03-01", "to": "2025-04-01"}


async def a_shop(producer: AIOKafkaProducer, db: asyncpg.Pool) -> str:
    """A shop the facts know: one customer signed up there."""
    shop, customer = unique("shop"), unique("an")
    data = {
        "customer_id": customer,
        "email": f"{customer}@mail.example",
        "name": "Lê Văn An",
        "locale": "vi-VN",
        "time_zone": "Asia/Ho_Chi_Minh",
        "consent": {"email": False, "push": False},
        "shop_id": shop,
    }
    event = event_of("customer.signed_up", customer, data, SIGNED_UP)
    await producer.send_and_wait("shop.customers", encoded(event), key=customer.encode())
    await eventually(
        lambda: db.fetchval("SELECT count(*) FROM analytics.customers WHERE shop_id = $1", shop),
        lambda n: n == 1,
    )
    return shop


def problem_at(response: httpx.Response) -> str:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return str(response.json()["errors"][0]["location"])


async def test_days_at_the_ends_of_the_calendar_are_refused_naming_the_parameter(
    analytics: httpx.AsyncClient,
) -> None:
    for path in ("/v1/report", "/v1/report.html"):
        first = await analytics.get(path, params={"from": "0001-01-01", "to": "2025-01-01"})
        last = await analytics.get(path, params={"from": "2025-01-01", "to": "9999-12-31"})
        cohort = await analytics.get(path, params={**MARCH, "cohort": "9999-12"})
        assert problem_at(first) == "query.from"
        assert problem_at(last) == "query.to"
        assert problem_at(cohort) == "query.cohort"
    # the connection still serves the next request
    assert (await analytics.get("/v1/report", params=MARCH)).status_code == 200


async def test_the_widest_period_allowed_makes_a_report(analytics: httpx.AsyncClient) -> None:
    response = await analytics.get("/v1/report", params={"from": "1970-01-01", "to": "3000-01-01"})

    assert response.status_code == 200, response.text
    assert len(response.json()["tiers_by_month"]) == 1030 * 12


async def test_an_unknown_currency_is_refused_and_an_unknown_shop_or_tier_is_not_found(
    analytics: httpx.AsyncClient, producer: AIOKafkaProducer, db: asyncpg.Pool
) -> None:
    shop = await a_shop(producer, db)
    tier = unique("tier")
    await db.execute(
        """INSERT INTO analytics.tier_changes (event_id, customer_id, tier, effective_at, shop_id)
           VALUES ($1, $2, $3, $4, $5)""",
        unique("event"),
        unique("an"),
        tier,
        SIGNED_UP,
        shop,
    )

    malformed: dict[str, Any] = {
        "query.currency": {"currency": "XYZ"},
        "query.attribution_days": {"attribution_days": 0},
    }
    for location, params in malformed.items():
        response = await analytics.get("/v1/report", params={**MARCH, **params})
        assert problem_at(response) == location
    for params in ({"shop": unique("shop")}, {"tier": unique("tier")}):
        # No fact names them: no such report, rather than one of zeros.
        missing = await analytics.get("/v1/report", params={**MARCH, **params})
        assert (missing.status_code, missing.headers["content-type"]) == (404, PROBLEM)
        assert next(iter(params.values())) in missing.json()["detail"]
    known = await analytics.get("/v1/report", params={**MARCH, "shop": shop})
    known_tier = await analytics.get("/v1/report", params={**MARCH, "tier": tier})
    no_tier = await analytics.get("/v1/report", params={**MARCH, "shop": shop, "tier": "none"})

    assert known.status_code == 200, known.text
    assert known.json()["retention"]["new_customers"] == 1
    assert known_tier.status_code == 200, known_tier.text
    assert no_tier.json()["retention"]["new_customers"] == 1


async def report_command(infrastructure: Endpoints, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        loyalty_command,
        "analytics",
        "report",
        *args,
        env={
            "LOYALTY_DATABASE_URL": infrastructure.database_url,
            "LOYALTY_KAFKA_BOOTSTRAP_SERVERS": infrastructure.kafka_bootstrap,
        },
    )


async def test_the_report_command_refuses_bad_options_in_one_line_with_exit_code_2(
    infrastructure: Endpoints,
) -> None:
    march = ("--from", "2025-03-01", "--to", "2025-04-01")
    refused = {
        ("--from", "0001-01-01", "--to", "2025-01-01"): "--from",
        ("--from", "2025-01-01", "--to", "9999-12-31"): "--to",
        (*march, "--currency", "xyz"): "--currency",
        (*march, "--attribution-days", "0"): "--attribution-days",
        (*march, "--attribution-days", "-3"): "--attribution-days",
        (*march, "--tier", unique("tier")): "--tier",
    }
    runs = [report_command(infrastructure, *args) for args in refused]
    for done, option in zip(await asyncio.gather(*runs), refused.values(), strict=True):
        args = done.args
        assert done.returncode == 2, (args, done.stderr)
        assert "Traceback" not in done.stderr, done.stderr
        [line] = [x for x in done.stderr.splitlines() if option in x]
        assert line.startswith("loyalty analytics report: "), line


async def test_the_report_command_takes_a_currency_in_lower_case(
    infrastructure: Endpoints, producer: AIOKafkaProducer, db: asyncpg.Pool
) -> None:
    shop = await a_shop(producer, db)

    done = await report_command(
        infrastructure,
        "--from",
        "2025-03-01",
        "--to",
        "2025-04-01",
        "--shop",
        shop,
        "--currency",
        "vnd",
        "--attribution-days",
        "3",
        "--json",
    )

    assert done.returncode == 0, done.stderr
    assert '"currency": "VND"' in done.stdout
    assert '"attribution_days": 3' in done.stdout
