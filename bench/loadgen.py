"""Order events for the benchmark: generated once, produced as fast as the broker takes them."""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from aiokafka import AIOKafkaProducer

from services.earn.domain.orders import units_points as points_for
from services.earn.programme import Rate
from shared.events import encode_event, make_event
from shared.events.catalog import TOPICS
from shared.settings import CommonSettings

VND_RATE = Rate(per_amount=Decimal(10_000), points=1)
OrderPaid = TOPICS["shop.orders"]["order.paid"]


@dataclass(frozen=True)
class Load:
    records: list[tuple[bytes, bytes]]  # (key, value)
    expected_points: Counter[str]
    # With several shops (`generate_at_shops`): the points per (shop, customer).
    expected_at_shops: Counter[tuple[str, str]] = field(default_factory=Counter)


def order_paid_bytes(
    customer: str, order: str, amount: Decimal, at: datetime, shop_id: str | None = None
) -> bytes:
    """An order.paid of one line in VND; of the shop `default` unless `shop_id` is given."""
    shop = {} if shop_id is None else {"shop_id": shop_id}
    data = OrderPaid.model_validate(
        {
            **shop,
            "order_id": order,
            "customer_id": customer,
            "currency": "VND",
            "items": [
                {
                    "sku": "SKU-1",
                    "name": "Tea set",
                    "category": "home",
                    "quantity": 1,
                    "unit_price": str(amount),
                }
            ],
            "totals": {"total": {"amount": str(amount), "currency": "VND"}},
        }
    )
    event = make_event("order.paid", source="bench/shop", subject=customer, data=data, time=at)
    return encode_event(event)


def generate(events: int, customers: int, *, prefix: str, seed: int = 7) -> Load:
    """`events` order.paid events spread over `customers`, with the points each should earn."""
    rng = random.Random(seed)  # noqa: S311 - load generation
    now = datetime.now(UTC)
    expected: Counter[str] = Counter()
    records = []
    for n in range(events):
        customer = f"{prefix}{n % customers:06d}"
        amount = Decimal(rng.randrange(50, 2_000)) * 1000
        records.append(
            (customer.encode(), order_paid_bytes(customer, f"{prefix}o{n}", amount, now))
        )
        expected[customer] += points_for(amount, VND_RATE)
    return Load(records, expected)


def shop_rate(index: int) -> Rate:
    """The earn rate of the benchmark's shop `index`: 1 point per 10,000 to 50,000 VND."""
    return Rate(per_amount=VND_RATE.per_amount * (1 + index % 5), points=1)


def shop_id(index: int, prefix: str = "bench-") -> str:
    return f"{prefix}{index:04d}"


def generate_at_shops(
    events: int, customers: int, shops: int, *, prefix: str, seed: int = 7
) -> Load:
    """`events` order.paid events of `customers` at `shops` shops: each customer has a home shop
    (customers spread evenly over the shops) where most of their orders are, and orders at
    other shops too; the points each (shop, customer) should earn at its shop's rate."""
    rng = random.Random(seed)  # noqa: S311 - load generation
    now = datetime.now(UTC)
    expected: Counter[tuple[str, str]] = Counter()
    records = []
    for n in range(events):
        number = n % customers
        customer = f"{prefix}{number:06d}"
        index = number % shops if rng.random() < 0.7 else rng.randrange(shops)
        amount = Decimal(rng.randrange(50, 2_000)) * 1000
        shop = shop_id(index)
        value = order_paid_bytes(customer, f"{prefix}o{n}", amount, now, shop_id=shop)
        records.append((customer.encode(), value))
        expected[shop, customer] += points_for(amount, shop_rate(index))
    return Load(records, Counter(), expected)


def producer(bootstrap: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=10, max_batch_size=512 * 1024
    )


async def preload(bootstrap: str, topic: str, records: Sequence[tuple[bytes, bytes]]) -> float:
    """Produce every (key, value) record; returns the seconds it took."""
    started = time.perf_counter()
    kafka = producer(bootstrap)
    await kafka.start()
    try:
        pending = []
        for key, value in records:
            pending.append(await kafka.send(topic, value, key=key))
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await kafka.stop()
    return time.perf_counter() - started


async def offer(bootstrap: str, topic: str, *, rate: int, seconds: float, prefix: str) -> int:
    """Produce fresh order.paid events at `rate` per second, each timed at its sending."""
    # No linger: the latency measured is the service's, not the load generator's batching.
    kafka = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await kafka.start()
    sent = 0
    tick = 0.01
    started = time.perf_counter()
    try:
        while (elapsed := time.perf_counter() - started) < seconds:
            due = int(elapsed * rate) + 1
            while sent < due:
                customer = f"{prefix}{sent % 5000:05d}"
                value = order_paid_bytes(
                    customer, f"{prefix}o{sent}", Decimal(100_000), datetime.now(UTC)
                )
                await kafka.send(topic, value, key=customer.encode())
                sent += 1
            await asyncio.sleep(tick)
        await kafka.flush()
    finally:
        await kafka.stop()
    return sent


def arguments(description: str | None, *, count: str) -> argparse.ArgumentParser:
    """The options every drain benchmark takes: how many `--{count}` (records pre-loaded), for
    how many customers, on how many partitions, consumed in batches of how many."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(f"--{count}", type=int, default=200_000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument(
        "--batch",
        type=int,
        default=CommonSettings().batch_max_records,
        help="records per consumed batch (default: the services' default)",
    )
    return parser
