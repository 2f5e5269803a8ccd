"""Web Push with VAPID to a local push service that decrypts what it receives (RFC 8291)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from faststream.asgi import AsgiFastStream
from infrastructure import Endpoints
from notify_support import (
    PushReceiver,
    RunDue,
    SmtpInbox,
    cart_abandoned,
    notify_customer,
    signed_up,
)
from py_vapid import Vapid02
from support import TopicTail, encoded, eventually

from services.notify.adapters.push import vapid_public_key
from services.notify.settings import NotifySettings
from shared.runtime import Runtime

T0 = datetime(2031, 8, 3, 3, 0, tzinfo=UTC)  # 10:00 in Ho Chi Minh City


async def sign_up_with_cart(
    producer: AIOKafkaProducer, db: asyncpg.Pool, customer: str, push: dict[str, Any]
) -> None:
    event = signed_up(customer, T0, email=f"{customer}@mail.example", push=push)
    await producer.send_and_wait("shop.customers", encoded(event), key=customer.encode())
    await eventually(
        lambda: db.fetch("SELECT 1 FROM notify.scheduled WHERE customer_id = $1", customer),
        lambda rows: len(rows) == 2,  # welcome by email and by push
    )
    cart = cart_abandoned(customer, T0)
    await producer.send_and_wait("shop.carts", encoded(cart), key=customer.encode())
    await eventually(
        lambda: db.fetch("SELECT 1 FROM notify.scheduled WHERE customer_id = $1", customer),
        lambda rows: len(rows) == 6,
    )


async def test_push_is_encrypted_for_the_subscription_with_vapid_ttl_urgency_and_topic(
    notify: tuple[AsgiFastStream, Runtime],
    run_due: RunDue,
    push_receiver: PushReceiver,
    smtp: SmtpInbox,
    db: asyncpg.Pool,
    producer: AIOKafkaProducer,
    notify_settings: NotifySettings,
) -> None:
    customer = notify_customer()
    subscriber = push_receiver.subscriber()
    await sign_up_with_cart(producer, db, customer, subscriber.subscription())

    outcome = await run_due(T0 + timedelta(hours=1, minutes=1))

    assert outcome["sent"] >= 4  # welcome and first reminder, each by email and by push
    pushed = push_receiver.to(subscriber)
    assert len(pushed) == 2
    welcome, reminder = (json.loads(p.plaintext or b"") for p in pushed)
    assert welcome["title"] == "Chào mừng Nguyễn Văn An!"
    assert reminder["title"] == "Nguyễn Văn An ơi, giỏ hàng đang chờ bạn"
    assert "1.412.567\xa0₫" in reminder["body"]
    assert reminder["url"] == "https://shop.example/cart/1"
    headers = pushed[1].headers
    assert headers["TTL"] == str(notify_settings.push_ttl_s)
    assert headers["Urgency"] == "normal"
    assert headers["Topic"] == "cart-abandoned"
    assert headers["Content-Encoding"] == "aes128gcm"
    assert pushed[0].headers["Urgency"] == "high"  # the welcome is transactional
    authorization = headers["Authorization"]
    assert Vapid02.verify(authorization)
    assert notify_settings.vapid_private_key is not None
    public = vapid_public_key(notify_settings.vapid_private_key.get_secret_value())
    assert authorization.endswith(f"k={public}")
    claims = json.loads(_b64(authorization.split("t=")[1].split(".")[1]))
    assert claims["aud"] == f"https://127.0.0.1:{push_receiver.port}"
    assert claims["sub"] == "mailto:ops@shop.example"


async def test_a_gone_subscription_is_removed_and_a_broken_one_fails_without_blocking_others(
    notify: tuple[AsgiFastStream, Runtime],
    run_due: RunDue,
    push_receiver: PushReceiver,
    db: asyncpg.Pool,
    producer: AIOKafkaProducer,
    infrastructure: Endpoints,
) -> None:
    gone, broken, fine = notify_customer(), notify_customer(), notify_customer()
    gone_subscriber = push_receiver.subscriber()
    push_receiver.status[gone_subscriber.endpoint.split(str(push_receiver.port), 1)[1]] = 410
    not_on_curve = base64.urlsafe_b64encode(b"\x04" + b"\x01" * 64).rstrip(b"=").decode()
    broken_subscription = push_receiver.subscriber().subscription()
    broken_subscription["keys"]["p256dh"] = not_on_curve
    fine_subscriber = push_receiver.subscriber()
    async with TopicTail(infrastructure.kafka_bootstrap, "loyalty.notifications") as events:
        await sign_up_with_cart(producer, db, gone, gone_subscriber.subscription())
        await sign_up_with_cart(producer, db, broken, broken_subscription)
        await sign_up_with_cart(producer, db, fine, fine_subscriber.subscription())
        await run_due(T0 + timedelta(minutes=1))
        published = await events.collect(lambda r: r.key == gone.encode(), count=2)

    assert len(push_receiver.to(fine_subscriber)) == 1
    subscription = await db.fetchval(
        "SELECT push_subscription FROM notify.customers WHERE customer_id = $1", gone
    )
    assert subscription is None
    failures = {
        customer: await db.fetchval(
            """SELECT detail FROM notify.delivery_log
               WHERE customer_id = $1 AND channel = 'push' AND outcome = 'failed'""",
            customer,
        )
        for customer in (gone, broken)
    }
    assert failures[gone] == "push subscription gone: HTTP 410"
    assert failures[broken] == "unusable push subscription: ValueError"
    failed = [json.loads(r.value) for r in published if b"notification.failed" in r.value]
    assert failed[0]["data"]["channel"] == "push"
    assert "endpoint" not in failed[0]["data"]["error"]
    later = await run_due(T0 + timedelta(hours=1, minutes=1))
    assert later["sent"] >= 1
    push_rows = await db.fetch(
        """SELECT status FROM notify.scheduled
           WHERE customer_id = $1 AND channel = 'push' AND trigger = 'cart.abandoned'
           ORDER BY due_at""",
        gone,
    )
    assert [r["status"] for r in push_rows] == ["suppressed", "pending"]


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


async def test_shop_links_and_the_push_url_lead_to_the_storefront_not_to_notify(
    notify: tuple[AsgiFastStream, Runtime],
    run_due: RunDue,
    push_receiver: PushReceiver,
    smtp: SmtpInbox,
    db: asyncpg.Pool,
    producer: AIOKafkaProducer,
    notify_settings: NotifySettings,
) -> None:
    customer = notify_customer()
    subscriber = push_receiver.subscriber()
    email = f"{customer}@mail.example"
    event = signed_up(customer, T0, email=email, push=subscriber.subscription())
    await producer.send_and_wait("shop.customers", encoded(event), key=customer.encode())
    await eventually(
        lambda: db.fetch("SELECT 1 FROM notify.scheduled WHERE customer_id = $1", customer),
        lambda rows: len(rows) == 2,
    )
    storefront = "https://www.shop.example"
    settings = notify_settings.model_copy(update={"storefront_url": storefront})

    outcome = await run_due(T0 + timedelta(minutes=1), settings)

    assert outcome["sent"] >= 2
    (welcome,) = smtp.to(email)
    assert f'href="{storefront}"' in welcome.part("html")
    assert f"{storefront}\n" in welcome.part("plain")
    for part in (welcome.part("html"), welcome.part("plain")):
        # notify's own address appears only in the unsubscribe link
        assert part.count(settings.public_base_url) == part.count("/unsubscribe?token=")
    (pushed,) = push_receiver.to(subscriber)
    assert json.loads(pushed.plaintext or b"")["url"] == storefront
