"""The operations page on the real broker and database: a shop's dead letters, dead-lettered by
a real earn, shown with their reason to that shop only (one that is not JSON names no shop: to
platform operators only), and replayed once after the fix. The page reads the console's index,
which its background pass fills from the .dlq topics: the test waits for that pass."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from console_support import console_service, csrf_of, indexed, signed_in
from earn_support import earn_of_its_own
from infrastructure import Endpoints
from support import (
    TopicTail,
    encoded,
    eventually,
    order_paid,
    start_service_groups_at_end,
    unique,
)

from services.console.domain.roles import Role
from services.earn.bootstrap import definition as earn_definition
from services.earn.programme import parse_programme
from services.earn.settings import EarnSettings
from shared.events import CloudEvent
from shared.settings import CommonSettings

USD = {"per_amount": Decimal(1), "points": 1}


def of_shop(event: CloudEvent[Any], shop: str) -> CloudEvent[Any]:
    return event.model_copy(update={"data": event.data.model_copy(update={"shop_id": shop})})


def refused(record: Any) -> tuple[str, str]:
    """A dead letter's key and error class."""
    headers = dict(record.headers or ())
    return (record.key or b"").decode(), headers.get("x-dlq-error-class", b"").decode()


async def page_of(
    client: httpx.AsyncClient, shop: str, error_class: str | None = None
) -> httpx.Response:
    """The shop's shop.orders dead letters, of one error class if given: the shop `default`
    collects many from other tests (newer ones, from a later clock, could push ours off the
    page), so the checks on it narrow to the class they look for."""
    params = {"topic": "shop.orders"} | ({"error_class": error_class} if error_class else {})
    return await client.get(f"/shops/{shop}/operations", params=params)


async def replay(client: httpx.AsyncClient, shop: str, position: str) -> httpx.Response:
    token = csrf_of((await client.get("/shops")).text)
    return await client.post(
        f"/shops/{shop}/operations/replay", data={"csrf_token": token, "position": position}
    )


async def test_a_shops_dead_letter_shows_to_that_shop_only_and_replays_once_after_the_fix(
    infrastructure: Endpoints, producer: AIOKafkaProducer
) -> None:
    customer, stranger, garbled = unique("c"), unique("c"), unique("c")
    other_shop = unique("ops")
    # The shop `default` has no rate for EUR: NoEarnRate. The other shop has no programme.
    order = order_paid(customer, total="30", currency="EUR")
    foreign = of_shop(order_paid(stranger, total="30", currency="USD"), other_shop)
    expected = {(customer, "NoEarnRate"), (stranger, "UnknownShop")}

    def ours_to_see(record: Any) -> bool:
        # Concurrent sessions' services may dead-letter these too: ours are known by reason
        # (any dead letter of the garbled record names no shop).
        return refused(record) in expected or record.key == garbled.encode()

    prefix = unique("ops")
    consumed = list(earn_definition(EarnSettings()).handlers)
    await start_service_groups_at_end(
        infrastructure.kafka_bootstrap,
        CommonSettings(consumer_group_prefix=prefix),
        "earn",
        consumed,
    )
    broken = parse_programme({"currencies": {"USD": USD}})
    async with (
        earn_of_its_own(infrastructure, "ops", programme=broken, consumer_group_prefix=prefix),
        TopicTail(infrastructure.kafka_bootstrap, "shop.orders.dlq") as tail,
    ):
        await producer.send_and_wait("shop.orders", encoded(order), key=customer.encode())
        await producer.send_and_wait("shop.orders", encoded(foreign), key=stranger.encode())
        await producer.send_and_wait("shop.orders", b"{not json", key=garbled.encode())
        dead: dict[str, Any] = {}
        while len(dead) < len(expected) + 1:
            for record in await tail.collect(ours_to_see, count=1):
                dead.setdefault(refused(record)[0], record)
    ours, theirs, shopless = dead[customer], dead[stranger], dead[garbled]
    ours_at = f"shop.orders.dlq/{ours.partition}/{ours.offset}"
    theirs_at = f"shop.orders.dlq/{theirs.partition}/{theirs.offset}"
    shopless_at = f"shop.orders.dlq/{shopless.partition}/{shopless.offset}"
    garbled_class = refused(shopless)[1]

    async with console_service(infrastructure, console_dead_letters_index_s=0.2) as console:
        await indexed(console.pool, ours_at, theirs_at, shopless_at)
        owner = await console.make_user({"default": Role.OWNER}, locale="en")
        support = await console.make_user({"default": Role.SUPPORT}, locale="en")
        other_owner = await console.make_user({other_shop: Role.OWNER}, locale="en")
        operator = await console.make_user(operator=True, locale="en")
        async with console.client() as client:
            await signed_in(client, operator)
            operators_page = await page_of(client, "default", "NoEarnRate")
            operators_garbled = await page_of(client, "default", garbled_class)
        async with console.client() as client:
            await signed_in(client, other_owner)
            their_page = await page_of(client, other_shop)
            not_theirs = await replay(client, other_shop, ours_at)
        async with console.client() as client:
            await signed_in(client, support)
            support_page = await page_of(client, "default", "NoEarnRate")
            support_garbled = await page_of(client, "default", garbled_class)
            support_replay = await replay(client, "default", ours_at)
        fix = parse_programme({"currencies": {"USD": USD, "EUR": USD}})
        async with (
            earn_of_its_own(
                infrastructure, "ops", programme=fix, consumer_group_prefix=prefix
            ) as earn,
            console.client() as client,
        ):
            await signed_in(client, owner)
            before = await page_of(client, "default", "NoEarnRate")
            first = await replay(client, "default", ours_at)

            async def entries() -> list[Any]:
                return await earn.runtime.require_pool().fetch(
                    "SELECT delta, source_event_id FROM earn.ledger WHERE customer_id = $1",
                    customer,
                )

            await eventually(entries, lambda rows: len(rows) == 1, timeout=30)
            second = await replay(client, "default", ours_at)
            await asyncio.sleep(2)  # a second entry, had the replay published twice, lands now
            final = await entries()
            after = await page_of(client, "default", "NoEarnRate")
        actions = await console.pool.fetch(
            "SELECT action, target FROM console.actions WHERE user_id = $1 AND action LIKE 'dead%'",
            owner.user_id,
        )

    assert ours_at in before.text
    assert "NoEarnRate" in before.text
    assert "EUR" in before.text  # the error message names what is missing
    assert theirs_at not in before.text
    assert shopless_at not in before.text
    assert ours_at in operators_page.text
    assert shopless_at in operators_garbled.text
    assert "not JSON: no shop" in operators_garbled.text
    assert shopless_at not in their_page.text
    assert shopless_at not in support_garbled.text
    assert theirs_at in their_page.text
    assert "UnknownShop" in their_page.text
    assert ours_at not in their_page.text
    assert not_theirs.status_code == 404
    assert ours_at in support_page.text
    assert 'name="position"' not in support_page.text
    assert support_replay.status_code == 403
    assert first.status_code == 200
    assert "Replayed: 1." in first.text
    assert second.status_code == 200
    assert "Replayed: 0. Replayed before, skipped: 1." in second.text
    assert [(r["delta"], r["source_event_id"]) for r in final] == [(30, order.id)]
    row = after.text.split(ours_at, 1)[1].split("</tr>", 1)[0]
    assert row.rstrip().endswith("<td>Yes</td>")
    assert [(a["action"], a["target"]) for a in actions] == [("dead_letter.replayed", ours_at)]
