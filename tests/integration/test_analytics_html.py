"""The HTML report opens in headless Chromium without a console message and draws its charts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from browser import hex_rgb, open_headless, png_colours
from support import encoded, eventually, unique

from services.analytics.rendering import charts
from shared.events import make_event
from shared.events.catalog import TOPICS, topic_for


async def publish(
    producer: AIOKafkaProducer, kind: str, data: dict[str, Any], at: datetime
) -> None:
    model = TOPICS[topic_for(kind)][kind]
    event = make_event(
        kind,
        source="tests/shop",
        subject=data["customer_id"],
        data=model.model_validate(data),
        time=at,
    )
    await producer.send_and_wait(topic_for(kind), encoded(event), key=event.subject.encode())


async def a_shop_with_every_kind_of_fact(producer: AIOKafkaProducer, start: datetime) -> str:
    """Two customers over two months: orders, a tier, points spent and expired, a reminder."""
    shop = unique("shop")
    for n, customer in enumerate((unique("html"), unique("html"))):
        day = start + timedelta(days=2 + n)
        await publish(
            producer,
            "customer.signed_up",
            {
                "customer_id": customer,
                "email": "a@mail.example",
                "name": "An",
                "locale": "vi-VN",
                "time_zone": "Asia/Ho_Chi_Minh",
                "shop_id": shop,
            },
            day,
        )
        for days, total in ((0, 400_000), (33, 250_000)):
            await publish(
                producer,
                "order.paid",
                {
                    "order_id": unique("o"),
                    "customer_id": customer,
                    "currency": "VND",
                    "shop_id": shop,
                    "items": [
                        {
                            "sku": "T",
                            "name": "Tea",
                            "category": "home",
                            "quantity": 1,
                            "unit_price": str(total),
                        }
                    ],
                    "totals": {"total": {"amount": str(total), "currency": "VND"}},
                },
                day + timedelta(days=days),
            )
        entry = {"customer_id": customer, "shop_id": shop, "balance_after": 0, "reason": "test"}
        await publish(
            producer, "points.earned", {**entry, "entry_id": unique("e"), "delta": 900}, day
        )
        await publish(
            producer,
            "points.redeemed",
            {**entry, "entry_id": unique("e"), "delta": -300},
            day + timedelta(days=35),
        )
        await publish(
            producer,
            "points.expired",
            {**entry, "entry_id": unique("e"), "delta": -100},
            day + timedelta(days=36),
        )
        await publish(
            producer,
            "tier.changed",
            {
                "customer_id": customer,
                "shop_id": shop,
                "from_tier": None,
                "to_tier": "member",
                "direction": "up",
                "reason": "entered",
                "qualifying_amount": "400000",
                "basis": "spend",
                "currency": "VND",
                "effective_at": day.isoformat(),
            },
            day,
        )
        await publish(
            producer,
            "notification.sent",
            {
                "notification_id": unique("n"),
                "customer_id": customer,
                "shop_id": shop,
                "trigger": "cart.abandoned",
                "channel": "email",
                "template": "cart_reminder",
            },
            day + timedelta(days=32),
        )
    return shop


async def test_html_report_opens_headless_without_console_messages_and_shows_its_charts(
    analytics: httpx.AsyncClient, producer: AIOKafkaProducer, tmp_path: Path
) -> None:
    start = datetime(2024, 3, 1, tzinfo=UTC)
    shop = await a_shop_with_every_kind_of_fact(producer, start)
    query = {"from": "2024-03-01", "to": "2024-05-01", "shop": shop}

    async def report() -> dict[str, Any]:
        response = await analytics.get("/v1/report", params=query)
        # 404 until the shop's first customer is stored
        return response.json() if response.status_code == 200 else {}

    await eventually(
        report,
        lambda r: (
            bool(r)
            and r["purchases"]["orders"] == 4
            and r["messages"]
            and r["programme"]["points_expired"] == 200
        ),
    )
    response = await analytics.get("/v1/report.html", params=query)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = tmp_path / "report.html"
    page.write_text(response.text, encoding="utf-8")

    opened = open_headless(page, tmp_path / "report.png", size="1400,1400")

    assert opened.console == []
    colours = png_colours(opened.screenshot)
    drawn = {
        "points issued": charts.ISSUED,
        "points redeemed": charts.REDEEMED,
        "points expired": charts.EXPIRED,
        "messages sent": charts.SENT,
        "messages converted": charts.CONVERTED,
        "tier member": charts.tier_colours(["member"])["member"],
        "cohort heat map at 100%": charts.heat_colour(Decimal(100)),
    }
    missing = {name: c for name, c in drawn.items() if colours.get(hex_rgb(c), 0) < 40}
    assert missing == {}


def test_the_headless_check_sees_console_errors(tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text("<html><body><script>missingFunction();</script></body></html>")
    opened = open_headless(page, tmp_path / "broken.png", size="400,300")
    assert any("missingFunction" in line for line in opened.console)


async def test_a_query_that_makes_no_report_is_a_problem_naming_the_parameter(
    analytics: httpx.AsyncClient,
) -> None:
    response = await analytics.get("/v1/report", params={"from": "2025-03-01", "to": "2025-03-01"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"] == [
        {"location": "query.to", "message": "must be later than from"}
    ]
    spec = (await analytics.get("/openapi.json")).json()
    assert {"/v1/report", "/v1/report.html"} <= set(spec["paths"])
