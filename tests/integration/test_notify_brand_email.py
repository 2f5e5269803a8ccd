"""A shop's [brand] reaches its customers' emails through real Kafka and a real SMTP server:
the logo, the button in its colours, tier and points in the footer, a plain-text part that
carries none of the markup."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from faststream.asgi import AsgiFastStream
from notify_support import Captured, RunDue, SmtpInbox, notify_customer, signed_up
from support import encoded, eventually, unique

from services.notify.bootstrap import make_shop_messages
from services.notify.settings import NotifySettings
from services.notify.shop_messages import ShopMessageSettings
from shared.runtime import Runtime

# 10:00 in Ho Chi Minh City: outside quiet hours.
T0 = datetime(2031, 10, 5, 3, 0, tzinfo=UTC)
SEN = unique("sen")
SEN_MESSAGES = """
sender_name = "Gốm Sen"
sender_address = "xin-chao@sen.example"
storefront_url = "https://sen.example"

[brand]
logo_url = "https://sen.example/logo.png"
primary_colour = "#8B1E3F"
"""


@pytest.fixture(scope="module")
def shops(notify_settings: NotifySettings) -> ShopMessageSettings:
    book = make_shop_messages(notify_settings)
    book.put_toml(SEN, SEN_MESSAGES)
    return book


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.cells: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "td":
            self.cells.append(dict(attrs))


async def test_a_branded_shops_welcome_shows_its_logo_button_and_the_customers_standing(
    notify: tuple[AsgiFastStream, Runtime],
    run_due: RunDue,
    smtp: SmtpInbox,
    db: asyncpg.Pool,
    producer: AIOKafkaProducer,
    shops: ShopMessageSettings,
) -> None:
    customer = notify_customer()
    email = f"{customer}@mail.example"
    event = signed_up(customer, T0, email=email, locale="vi-VN", shop_id=SEN)
    await producer.send_and_wait("shop.customers", encoded(event), key=customer.encode())
    await eventually(
        lambda: db.fetchval(
            "SELECT count(*) FROM notify.scheduled WHERE customer_id = $1", customer
        ),
        lambda n: n == 1,
        timeout=180.0,  # notify applies nothing before it has read loyalty.shops to its end
    )

    await run_due(T0 + timedelta(minutes=1), shops=shops)
    [welcome] = await eventually(lambda: _mail(smtp, email), lambda got: len(got) == 1)
    html, text = welcome.part("html"), welcome.part("plain")
    cells = _Links()
    cells.feed(html)

    assert str(welcome.message["From"]) == "Gốm Sen <xin-chao@sen.example>"
    assert '<img src="https://sen.example/logo.png" alt="Gốm Sen"' in html
    assert {
        "bgcolor": "#8B1E3F",
        "style": "border-radius: 6px; background: #8B1E3F;",
    } in cells.cells
    assert ">Mua sắm ngay</a>" in html
    assert "Điểm: <strong>0</strong>" in html  # no points event yet: a balance of 0
    assert "<" not in text
    assert "Chào mừng" in text


async def _mail(smtp: SmtpInbox, address: str) -> list[Captured]:
    return smtp.to(address)
