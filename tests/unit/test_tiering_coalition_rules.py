"""Tiering's reading of a coalition's events: the holder's totals move, a member's source keys
are scoped by the member shop, the shop where it happened comes from at_shop, and a shop
event naming a coalition is refused."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from support import consumer_record, encoded, order_paid
from tiering_builders import programme

from services.tiering.handlers import holder_of
from services.tiering.movements import at_shop_of, movement_of
from services.tiering.shops import UnknownShop
from shared.consumer import Incoming, to_incoming
from shared.events import CloudEvent, PointsEarned, make_event
from shared.events.fields import EVENT_TIME_START
from shared.holders import Holders, Membership, shop_scoped

AT = datetime(2026, 6, 1, tzinfo=UTC)
POINT_TIERS: list[dict[str, Any]] = [
    {"code": "member", "name": "Member"},
    {"code": "silver", "name": "Silver", "enter": {"points": "100"}},
]


def incoming(event: CloudEvent[Any], topic: str = "shop.orders") -> Incoming:
    parsed = to_incoming(consumer_record(encoded(event), topic=topic))
    assert isinstance(parsed, Incoming)
    return parsed


def paid_at(shop: str, order_id: str = "o-1") -> Incoming:
    event = order_paid("c-1", order_id=order_id, at=AT)
    data = event.data.model_copy(update={"shop_id": shop})
    return incoming(event.model_copy(update={"data": data}))


def coalition_of_a_and_b() -> Holders:
    holders = Holders()
    for shop in ("a", "b"):
        holders.add(Membership(shop, 1, "c", EVENT_TIME_START))
    return holders


def test_the_same_order_id_at_two_members_moves_two_sources_of_the_coalition() -> None:
    holders = coalition_of_a_and_b()
    moves = []
    for shop in ("a", "b"):
        item = paid_at(shop)
        assert item.event is not None
        holder = holder_of(item, item.event, holders)
        moves.append(movement_of(item, programme(), holder=holder))

    assert [(m.shop_id, m.key) for m in moves if m is not None] == [
        ("c", shop_scoped("a", "o-1")),
        ("c", shop_scoped("b", "o-1")),
    ]


def test_a_shop_outside_the_coalition_keeps_its_own_keys() -> None:
    item = paid_at("n")
    assert item.event is not None

    holder = holder_of(item, item.event, coalition_of_a_and_b())
    movement = movement_of(item, programme(), holder=holder)

    assert movement is not None and (movement.shop_id, movement.key) == ("n", "o-1")


def test_a_coalitions_points_event_happened_at_its_member_shop() -> None:
    earned = PointsEarned(
        entry_id="e-1",
        customer_id="c-1",
        shop_id="c",
        at_shop="b",
        delta=10,
        balance_after=10,
        reason="order.paid",
        order_id="o-1",
    )
    item = incoming(
        make_event("points.earned", source="s", subject="c-1", data=earned, time=AT),
        "loyalty.points",
    )
    assert item.event is not None

    assert holder_of(item, item.event, coalition_of_a_and_b()) == "c"  # no refusal here
    assert at_shop_of(item.event) == "b"
    movement = movement_of(item, programme(basis="points", tiers=POINT_TIERS), holder="c")
    assert movement is not None and movement.key == shop_scoped("b", "o-1")


def test_an_order_naming_a_coalition_as_its_shop_is_refused() -> None:
    item = paid_at("c")
    assert item.event is not None

    with pytest.raises(UnknownShop):
        holder_of(item, item.event, coalition_of_a_and_b())
