"""Dead letters listed, inspected and replayed after a fix, on the real broker and database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from faststream.asgi import AsgiFastStream
from infrastructure import Endpoints
from pydantic import SecretStr
from support import (
    TopicTail,
    database_of_its_own,
    encoded,
    eventually,
    loyalty_command,
    order_paid,
    start_service_groups_at_end,
    unique,
)

from services.dlq.replay import Selection, replay
from services.earn.bootstrap import bootstrap as earn_bootstrap
from services.earn.bootstrap import definition as earn_definition
from services.earn.programme import Programme, parse_programme
from services.earn.settings import EarnSettings
from shared.settings import CommonSettings

USD = {"per_amount": Decimal(1), "points": 1}


@pytest.fixture
async def own_database(infrastructure: Endpoints) -> AsyncIterator[str]:
    """A database of this test's own: no other earn instance of the session shares its inbox."""
    async with database_of_its_own(infrastructure.database_url, "loyalty_dlq") as url:
        yield url


def earn_app(
    infrastructure: Endpoints, database_url: str, prefix: str, **rates: dict[str, object]
) -> AsgiFastStream:
    settings = EarnSettings(
        consumer_group_prefix=prefix,
        kafka_bootstrap_servers=infrastructure.kafka_bootstrap,
        database_url=SecretStr(database_url),
        log_format="console",
        batch_timeout_ms=20,
        outbox_idle_poll_s=0.05,
    )
    programme: Programme = parse_programme({"currencies": rates})
    app, _runtime = earn_bootstrap(settings, programme=programme)
    return app


def loyalty(database_url: str, *args: str) -> str:
    done = loyalty_command(*args, env={"LOYALTY_DATABASE_URL": database_url})
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_dead_letter_replayed_twice_after_the_fix_yields_exactly_one_entry(
    infrastructure: Endpoints, producer: AIOKafkaProducer, own_database: str
) -> None:
    customer = unique("c")
    order = order_paid(customer, total="30", currency="EUR")
    prefix = unique("dlq")
    # Every topic earn consumes (loyalty.tiers too): the test's earn sees only what it publishes.
    consumed = list(earn_definition(EarnSettings()).handlers)
    await start_service_groups_at_end(
        infrastructure.kafka_bootstrap,
        CommonSettings(consumer_group_prefix=prefix),
        "earn",
        consumed,
    )
    selection = Selection(["shop.orders.dlq"], error_class="NoEarnRate", key=customer)

    # Before the fix: earn has no rate for EUR and dead-letters the order.
    broken = earn_app(infrastructure, own_database, prefix, USD=USD)
    await broken.start()
    try:
        async with TopicTail(infrastructure.kafka_bootstrap, "shop.orders.dlq") as tail:
            await producer.send_and_wait("shop.orders", encoded(order), key=customer.encode())
            dead = await tail.collect(lambda r: r.key == customer.encode(), count=1)
    finally:
        await broken.stop()
    position = f"shop.orders.dlq/{dead[0].partition}/{dead[0].offset}"

    # The fix: EUR earns one point per euro. The same consumer group carries on.
    fixed = earn_app(infrastructure, own_database, prefix, USD=USD, EUR=USD)
    await fixed.start()
    db = await asyncpg.connect(own_database)
    try:
        first = await replay(
            kafka=infrastructure.kafka_bootstrap,
            database_url=own_database,
            selection=selection,
        )

        async def entries() -> list[asyncpg.Record]:
            return await db.fetch(
                "SELECT delta, source_event_id FROM earn.ledger WHERE customer_id = $1", customer
            )

        await eventually(entries, lambda rows: len(rows) == 1, timeout=30)
        second = await replay(
            kafka=infrastructure.kafka_bootstrap,
            database_url=own_database,
            selection=selection,
        )
        # A replay that died before recording its work republishes; that must change nothing.
        again = first.replayed[0]
        await producer.send_and_wait(
            again.original_topic, again.value, key=again.key, headers=again.replay_headers()
        )
        await asyncio.sleep(2)  # a second entry, if the inbox let one through, would land now
        final = await entries()
        balance = await db.fetchval(
            "SELECT points_balance FROM earn.accounts WHERE customer_id = $1", customer
        )
        listing = loyalty(own_database, "dlq", "list", "--topic", "shop.orders", "--limit", "500")
        shown = loyalty(own_database, "dlq", "inspect", "shop.orders", *position.split("/")[1:])
        by_position = ("dlq", "replay", "--position", position, "--dry-run")
        ours = loyalty(own_database, *by_position, "--shop", "default")
        others = loyalty(own_database, *by_position, "--shop", "another-shop")
    finally:
        await db.close()
        await fixed.stop()

    assert position in {d.position for d in first.replayed}
    assert not {d.position for d in first.replayed} & {d.position for d in second.replayed}
    assert second.already_replayed >= 1
    assert [(r["delta"], r["source_event_id"]) for r in final] == [(30, order.id)]
    assert balance == 30
    line = next(line for line in listing.splitlines() if line.startswith(position + " "))
    assert line.split()[-2:] == ["NoEarnRate", "yes"]
    assert "x-dlq-error-class: NoEarnRate" in shown
    assert f'"id": "{order.id}"' in shown
    # The order names no shop: it is the shop `default`'s, and no other shop's.
    assert "would replay 0 dead letter(s)" in ours
    assert "skipped 1 replayed before" in ours
    assert "skipped 0 replayed before" in others
