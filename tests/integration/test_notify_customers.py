"""Notify's customers' routes through real Kafka, PostgreSQL and SMTP: search without diacritics,
the profile, messages with their outcomes, resend once per Idempotency-Key, unsubscribe."""

from __future__ import annotations

import unicodedata
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from faststream.asgi import AsgiFastStream
from notify_support import NOTIFY_API_KEY, RunDue, SmtpInbox, notify_customer, signed_up
from support import encoded, eventually, unique

from services.notify.domain.search import VIETNAMESE, fold_vi
from shared.events import CloudEvent
from shared.runtime import Runtime

# 10:00 in Ho Chi Minh City, the customers' time zone: outside quiet hours.
T0 = datetime(2031, 10, 5, 3, 0, tzinfo=UTC)
SHOP, OTHER_SHOP = unique("shop"), unique("shop")
# Notify applies no event before it has read loyalty.shops to its end: on a broker shared by
# many runs, whose topic holds thousands of shops' records, that takes most of a minute.
CATCH_UP_S = 180.0


@pytest.fixture(scope="module")
async def api(notify: tuple[AsgiFastStream, Runtime]) -> AsyncIterator[httpx.AsyncClient]:
    """A client of notify's API with the platform key, at SHOP."""
    transport = httpx.ASGITransport(app=notify[0])
    headers = {"X-API-Key": NOTIFY_API_KEY, "X-Shop-Id": SHOP}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://notify", headers=headers
    ) as client:
        yield client


async def sign_up(
    producer: AIOKafkaProducer, db: asyncpg.Pool, name: str, shop: str = SHOP
) -> tuple[str, str]:
    """A customer of `shop` named `name`, known to notify; their id and email."""
    customer = notify_customer()
    email = f"{customer}@mail.example"
    event: CloudEvent[Any] = signed_up(customer, T0, email=email, name=name, shop_id=shop)
    await producer.send_and_wait("shop.customers", encoded(event), key=customer.encode())
    await eventually(
        lambda: db.fetchval(
            "SELECT count(*) FROM notify.customers WHERE shop_id = $1 AND customer_id = $2",
            shop,
            customer,
        ),
        lambda n: n == 1,
        timeout=CATCH_UP_S,
    )
    return customer, email


async def test_the_databases_fold_vi_agrees_with_pythons_over_every_vietnamese_letter(
    notify: tuple[AsgiFastStream, Runtime], db: asyncpg.Pool
) -> None:
    letters = list(VIETNAMESE)
    texts = [
        *letters,
        *(unicodedata.normalize("NFD", letter) for letter in letters),
        "Nguyễn Thị Minh Khai",
        "ĐẶNG VĂN ĐỨC <duc@mail.example> C-42",
    ]

    rows = await db.fetch("SELECT t, notify.fold_vi(t) AS folded FROM unnest($1::text[]) t", texts)

    assert {r["t"]: r["folded"] for r in rows} == {t: fold_vi(t) for t in texts}
    assert fold_vi("ĐẶNG VĂN ĐỨC") == "dang van duc"


async def test_nguyen_thi_finds_the_customers_named_nguyen_thi(
    api: httpx.AsyncClient, producer: AIOKafkaProducer, db: asyncpg.Pool
) -> None:
    mai, _ = await sign_up(producer, db, "Nguyễn Thị Mai")
    hoa, _ = await sign_up(producer, db, unicodedata.normalize("NFD", "Nguyễn Thị Hoa"))
    duc, duc_email = await sign_up(producer, db, "Trần Văn Đức")
    await sign_up(producer, db, "Nguyễn Thị Lan", shop=OTHER_SHOP)

    nguyen_thi = await api.get("/v1/customers", params={"q": "nguyen thi"})
    duc_by_name = await api.get("/v1/customers", params={"q": "đức"})
    by_email = await api.get("/v1/customers", params={"q": duc_email.upper()})
    by_id = await api.get("/v1/customers", params={"q": mai})
    too_short = await api.get("/v1/customers", params={"q": "ng"})

    assert nguyen_thi.status_code == 200, nguyen_thi.text
    found = nguyen_thi.json()["items"]
    assert [c["customer_id"] for c in found] == [hoa, mai]  # by name; Lan is another shop's
    assert found[1]["name"] == "Nguyễn Thị Mai"
    assert [c["customer_id"] for c in duc_by_name.json()["items"]] == [duc]
    assert [c["customer_id"] for c in by_email.json()["items"]] == [duc]
    assert [c["customer_id"] for c in by_id.json()["items"]] == [mai]
    assert too_short.json()["items"] == []


async def test_a_customers_messages_show_their_outcomes_and_a_resend_is_sent_once_per_key(
    api: httpx.AsyncClient,
    producer: AIOKafkaProducer,
    db: asyncpg.Pool,
    run_due: RunDue,
    smtp: SmtpInbox,
) -> None:
    customer, email = await sign_up(producer, db, "Lê Thu Hà")
    await eventually(
        lambda: api.get(f"/v1/customers/{customer}/messages"),
        lambda r: len(r.json()["items"]) == 1,
    )
    await run_due(T0 + timedelta(minutes=1))
    await eventually(lambda: _mail(smtp, email), lambda got: len(got) == 1)

    welcome = (await api.get(f"/v1/customers/{customer}/messages")).json()["items"][0]
    key = {"Idempotency-Key": unique("resend")}
    resend = f"/v1/customers/{customer}/messages/{welcome['message_id']}/resend"
    first = await api.post(resend, headers=key)
    again = await api.post(resend, headers=key)
    await run_due(T0 + timedelta(minutes=2))
    await eventually(lambda: _mail(smtp, email), lambda got: len(got) == 2)
    page = (await api.get(f"/v1/customers/{customer}/messages", params={"limit": 1})).json()
    older = await api.get(
        f"/v1/customers/{customer}/messages", params={"cursor": page["next_cursor"]}
    )

    assert (welcome["trigger"], welcome["template"], welcome["status"]) == (
        "customer.signed_up",
        "welcome",
        "sent",
    )
    assert [e["outcome"] for e in welcome["log"]] == ["sent"]
    assert (first.status_code, again.status_code) == (202, 202)
    assert first.json() == again.json() != {"message_id": welcome["message_id"]}
    assert [m["message_id"] for m in page["items"]] == [first.json()["message_id"]]
    assert page["items"][0]["status"] == "sent"
    assert [m["message_id"] for m in older.json()["items"]] == [welcome["message_id"]]
    assert older.json()["next_cursor"] is None
    assert len(smtp.to(email)) == 2  # the second request planned nothing more


async def test_unsubscribing_withdraws_consent_and_a_resend_is_then_suppressed(
    api: httpx.AsyncClient, producer: AIOKafkaProducer, db: asyncpg.Pool, run_due: RunDue
) -> None:
    customer, _ = await sign_up(producer, db, "Phạm Minh Tuấn")
    await eventually(
        lambda: api.get(f"/v1/customers/{customer}/messages"),
        lambda r: len(r.json()["items"]) == 1,
    )
    before = (await api.get(f"/v1/customers/{customer}")).json()

    done = await api.post(f"/v1/customers/{customer}/unsubscribe", json={"channel": "email"})
    welcome = (await api.get(f"/v1/customers/{customer}/messages")).json()["items"][0]
    await api.post(
        f"/v1/customers/{customer}/messages/{welcome['message_id']}/resend",
        headers={"Idempotency-Key": unique("k")},
    )
    await run_due(T0 + timedelta(minutes=1))
    after = (await api.get(f"/v1/customers/{customer}/messages")).json()["items"]
    unknown = await api.post(
        f"/v1/customers/{unique('nobody')}/unsubscribe", json={"channel": "email"}
    )

    assert (before["consent"], before["unsubscribed"]["email_at"]) == (
        {"email": True, "push": False},
        None,
    )
    assert before["name"] == "Phạm Minh Tuấn"
    assert done.status_code == 200, done.text
    assert done.json()["consent"]["email"] is False
    assert done.json()["unsubscribed"]["email_at"] is not None
    assert [m["status"] for m in after] == ["suppressed", "suppressed"]
    assert all(m["reason"] for m in after)
    assert unknown.status_code == 404


async def _mail(smtp: SmtpInbox, address: str) -> list[Any]:
    return smtp.to(address)
