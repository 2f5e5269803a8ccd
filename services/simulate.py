"""A small simulated shop: customers sign up, browse, abandon carts and order over time."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
import time
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.samples import DEFAULT_SHOP, SampleShop, build, sample_data
from shared.events import STRUCTURED_HEADER, encode_event, topic_for
from shared.kafka_connection import KafkaConnection, check_access, kafka_connection

log = structlog.get_logger("simulate")
T = TypeVar("T")

# What a customer does on a visit, with its weight.
ACTIONS = (("order", 6), ("cart.abandoned", 2), ("review.posted", 1), ("newsletter.subscribed", 1))


async def run_simulation(
    kafka: KafkaConnection | str,
    *,
    customers: int,
    rate: float,
    duration: float,
    seed: int | None = None,
    shops: Sequence[SampleShop] = (DEFAULT_SHOP,),
) -> dict[str, int]:
    """Publish events at about `rate` per second; log the points the engine sends back.

    Each visit is to one of `shops`, picked at random: the same customer ids shop at every one,
    signing up at each before their first visit there.
    """
    rng = random.Random(seed)  # noqa: S311 - simulation, not security
    run_id = f"{int(time.time()):x}"
    ids = [f"sim-{run_id}-{n:04d}" for n in range(customers)]
    await check_access(kafka)
    connection = kafka_connection(kafka)
    producer = AIOKafkaProducer(**connection.client_options(), acks="all", linger_ms=5)
    await producer.start()
    watcher = asyncio.create_task(_watch_points(connection, f"sim-{run_id}-"))
    counts: dict[str, int] = {}
    signed_up: set[tuple[str, str]] = set()
    started = time.monotonic()
    try:
        while duration <= 0 or time.monotonic() - started < duration:
            customer, shop = rng.choice(ids), rng.choice(shops)
            member = (shop.shop_id, customer)
            kinds = ["customer.signed_up"] if member not in signed_up else _visit(rng)
            signed_up.add(member)
            for kind in kinds:
                event = build(kind, customer, sample_data(kind, customer, rng, shop))
                await producer.send(
                    topic_for(kind),
                    encode_event(event),
                    key=customer.encode(),
                    headers=[STRUCTURED_HEADER],
                )
                counts[kind] = counts.get(kind, 0) + 1
                log.info("shop_event", type=kind, shop_id=shop.shop_id, customer_id=customer)
            await asyncio.sleep(len(kinds) / rate)
    finally:
        with contextlib.suppress(Exception):
            await producer.flush()
        await producer.stop()
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        log.info("simulation_done", **counts)
    return counts


async def until_signalled(work: Coroutine[Any, Any, T]) -> T | None:
    """Run `work` until it ends or Ctrl-C/SIGTERM cancels it; its cleanup then runs normally.

    (A KeyboardInterrupt would instead make asyncio.run cancel the Kafka clients' own tasks
    before `work` could close the clients, and the process would hang on its way out.)
    """
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        return await task
    except asyncio.CancelledError:
        return None


def _visit(rng: random.Random) -> list[str]:
    action = rng.choices([a for a, _ in ACTIONS], weights=[w for _, w in ACTIONS])[0]
    return ["order.placed", "order.paid"] if action == "order" else [action]


async def _watch_points(kafka: KafkaConnection, prefix: str) -> None:
    """Log points.earned for this run's customers, so a newcomer sees points appear."""
    consumer = AIOKafkaConsumer(
        "loyalty.points",
        **kafka.client_options(),
        auto_offset_reset="latest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        async for record in consumer:
            if not (record.key or b"").decode().startswith(prefix):
                continue
            event = json.loads(record.value)
            data = event["data"]
            log.info(
                "points_seen",
                type=event["type"],
                customer_id=event["subject"],
                delta=data.get("delta"),
                balance_after=data.get("balance_after"),
            )
    finally:
        await consumer.stop()
