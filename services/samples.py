"""Sample events, for `loyalty publish` and the simulated shop."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from aiokafka import AIOKafkaProducer

from shared.errors import RejectedMessage
from shared.events import STRUCTURED_HEADER, CloudEvent, encode_event, make_event, topic_for
from shared.events.catalog import TOPICS
from shared.kafka_connection import KafkaConnection, check_access, kafka_connection

SOURCE = "loyalty/samples"

PRODUCTS = (
    ("TEA-01", "Lotus tea 200 g", "grocery", Decimal(89_000)),
    ("CUP-02", "Bat Trang tea cup", "home", Decimal(145_000)),
    ("SLK-03", "Silk scarf", "fashion", Decimal(459_000)),
    ("COF-04", "Robusta coffee 500 g", "grocery", Decimal(129_000)),
    ("LAC-05", "Lacquer tray", "home", Decimal(690_000)),
)
NAMES = ("Nguyễn Thị Lan", "Trần Văn Minh", "Lê Hoàng Anh", "Phạm Thu Hà", "Alex Morgan")
# Prices above are in VND; a shop in another currency divides them by its rate (25,000 VND to
# the US dollar), rounded to its minor unit.
VND_PER = {"VND": Decimal(1), "USD": Decimal(25_000)}
MINOR_UNIT = {"VND": Decimal(1), "USD": Decimal("0.01")}


@dataclass(frozen=True)
class SampleShop:
    """The shop sample events belong to: its id, currency, customers' locale and time zone."""

    shop_id: str = "default"
    currency: str = "VND"
    locale: str = "vi-VN"
    time_zone: str = "Asia/Ho_Chi_Minh"
    storefront: str = "https://shop.example.com"

    def price(self, vnd: Decimal) -> Decimal:
        """A VND sample price in this shop's currency."""
        return (vnd / VND_PER[self.currency]).quantize(MINOR_UNIT[self.currency])


DEFAULT_SHOP = SampleShop()


def sample_data(
    event_type: str,
    customer_id: str,
    rng: random.Random | None = None,
    shop: SampleShop = DEFAULT_SHOP,
) -> dict[str, Any]:
    """Plausible data for an input event type, at `shop` and in its currency."""
    builder = _SAMPLES.get(event_type)
    if builder is None:
        known = ", ".join(sorted(_SAMPLES))
        raise RejectedMessage(
            f"no sample for event type {event_type!r}; known: {known}", error_class="UnknownType"
        )
    data = builder(customer_id, uuid.uuid4().hex[:10], rng or random.Random(), shop)  # noqa: S311
    return {**data, "shop_id": shop.shop_id}


def _customer(customer_id: str, _ref: str, rng: random.Random, shop: SampleShop) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "email": f"{customer_id}@example.com",
        "name": rng.choice(NAMES),
        "locale": shop.locale,
        "time_zone": shop.time_zone,
        "consent": {"email": True, "push": False},
    }


def _order_ref(
    customer_id: str, ref: str, _rng: random.Random, _shop: SampleShop
) -> dict[str, Any]:
    return {"order_id": f"o-{ref}", "customer_id": customer_id}


def _refund(customer_id: str, ref: str, _rng: random.Random, shop: SampleShop) -> dict[str, Any]:
    amount = shop.price(PRODUCTS[0][3])
    return {
        "order_id": f"o-{ref}",
        "customer_id": customer_id,
        "refund": {"amount": str(amount), "currency": shop.currency},
        "full": False,
    }


def _cart(customer_id: str, ref: str, rng: random.Random, shop: SampleShop) -> dict[str, Any]:
    cart = _order(customer_id, ref, rng, shop)
    return {
        "cart_id": f"cart-{ref}",
        "customer_id": customer_id,
        "currency": shop.currency,
        "items": [{k: v for k, v in item.items() if k != "category"} for item in cart["items"]],
        "total": cart["totals"]["total"],
        "cart_url": f"{shop.storefront}/cart/{ref}",
    }


def _review(customer_id: str, ref: str, rng: random.Random, _shop: SampleShop) -> dict[str, Any]:
    return {"review_id": f"r-{ref}", "customer_id": customer_id, "rating": rng.randint(3, 5)}


def _newsletter(
    customer_id: str, ref: str, _rng: random.Random, _shop: SampleShop
) -> dict[str, Any]:
    return {"subscription_id": f"n-{ref}", "customer_id": customer_id}


def _share(customer_id: str, ref: str, _rng: random.Random, shop: SampleShop) -> dict[str, Any]:
    return {
        "share_id": f"s-{ref}",
        "customer_id": customer_id,
        "network": "facebook",
        "url": f"{shop.storefront}/p/TEA-01",
    }


def _order(customer_id: str, ref: str, rng: random.Random, shop: SampleShop) -> dict[str, Any]:
    lines = [(product, rng.randint(1, 2)) for product in rng.sample(PRODUCTS, k=rng.randint(1, 3))]
    items = [
        {
            "sku": sku,
            "name": name,
            "category": cat,
            "quantity": qty,
            "unit_price": str(shop.price(price)),
        }
        for (sku, name, cat, price), qty in lines
    ]
    total = sum((shop.price(product[3]) * qty for product, qty in lines), Decimal(0))
    return {
        "order_id": f"o-{ref}",
        "customer_id": customer_id,
        "currency": shop.currency,
        "items": items,
        "totals": {"total": {"amount": str(total), "currency": shop.currency}},
    }


_SAMPLES: dict[str, Callable[[str, str, random.Random, SampleShop], dict[str, Any]]] = {
    "customer.signed_up": _customer,
    "customer.updated": _customer,
    "order.placed": _order,
    "order.paid": _order,
    "order.completed": _order_ref,
    "order.cancelled": _order_ref,
    "order.refunded": _refund,
    "cart.abandoned": _cart,
    "review.posted": _review,
    "newsletter.subscribed": _newsletter,
    "social.shared": _share,
}


def build(
    event_type: str, customer_id: str, data: dict[str, Any], event_id: str | None = None
) -> CloudEvent[Any]:
    """Validate `data` against the contract of its type and wrap it in a CloudEvent."""
    topic = topic_for(event_type)
    model = TOPICS[topic][event_type].model_validate(data)
    return make_event(event_type, source=SOURCE, subject=customer_id, data=model, id=event_id)


async def publish_one(
    kafka: KafkaConnection | str,
    event_type: str,
    customer_id: str,
    data: dict[str, Any] | None,
    event_id: str | None,
) -> Published:
    """Publish one event, keyed by customer; returns its JSON and where it was written."""
    event = build(event_type, customer_id, data or sample_data(event_type, customer_id), event_id)
    topic = topic_for(event_type)
    await check_access(kafka)
    producer = AIOKafkaProducer(**kafka_connection(kafka).client_options(), acks="all")
    await producer.start()
    try:
        body = encode_event(event)
        written = await producer.send_and_wait(
            topic, body, key=customer_id.encode(), headers=[STRUCTURED_HEADER]
        )
    finally:
        await producer.stop()
    return Published(body.decode(), topic, written.partition, written.offset)


@dataclass(frozen=True)
class Published:
    """An event published, and the partition and offset it was written at."""

    body: str
    topic: str
    partition: int
    offset: int
