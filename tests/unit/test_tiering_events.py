"""Consumed events as movements, and tier events as published: contracts, ids, multipliers."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError
from support import consumer_record, encoded, order_paid
from tiering_builders import programme

from services.tiering.adapters.publishing import change_id, tier_at_risk, tier_changed
from services.tiering.domain.contributions import MovementKind
from services.tiering.domain.state import AtRisk, TierChange
from services.tiering.movements import membership_floor, movement_of
from shared.consumer import Incoming, to_incoming
from shared.errors import RejectedMessage
from shared.events import (
    MembershipPurchased,
    OrderCancelled,
    OrderRefunded,
    PointsEarned,
    PointsRedeemed,
    TierChanged,
    make_event,
)

AT = datetime(2026, 12, 31, 18, 0, tzinfo=UTC)  # 1 January 2027 in Ho Chi Minh City


def incoming(event: object, topic: str = "shop.orders") -> Incoming:
    parsed = to_incoming(consumer_record(encoded(event), topic=topic))  # type: ignore[arg-type]
    assert isinstance(parsed, Incoming)
    return parsed


def test_order_paid_adds_the_total_on_the_shops_local_day() -> None:
    event = order_paid("c-1", total="259000", at=AT)

    movement = movement_of(incoming(event), programme())

    assert movement is not None
    assert (movement.kind, movement.key, movement.unit) == (
        MovementKind.ADD,
        event.data.order_id,
        "VND",
    )
    assert (movement.amount, movement.day) == (259_000, date(2027, 1, 1))


def test_refunds_and_cancellations_take_back_from_their_order() -> None:
    partial = OrderRefunded(
        order_id="o-1",
        customer_id="c-1",
        refund={"amount": "1000", "currency": "VND"},
        full=False,
    )
    full = partial.model_copy(update={"full": True})
    cancelled = OrderCancelled(order_id="o-1", customer_id="c-1")
    prog = programme()

    moves = [
        movement_of(incoming(make_event(t, source="s", subject="c-1", data=d)), prog)
        for t, d in (
            ("order.refunded", partial),
            ("order.refunded", full),
            ("order.cancelled", cancelled),
        )
    ]

    assert [(m.kind, m.amount) for m in moves if m is not None] == [
        (MovementKind.REMOVE, 1000),
        (MovementKind.REMOVE, None),
        (MovementKind.CLOSE, None),
    ]


def test_with_basis_spend_points_events_move_nothing_and_vice_versa() -> None:
    earned = PointsEarned(
        entry_id="e-1", customer_id="c-1", delta=10, balance_after=10, reason="order.paid"
    )
    points_event = incoming(
        make_event("points.earned", source="s", subject="c-1", data=earned), "loyalty.points"
    )
    order_event = incoming(order_paid("c-1"))

    assert movement_of(points_event, programme()) is None
    assert movement_of(order_event, programme(basis="points", tiers=POINT_TIERS)) is None
    earned_move = movement_of(points_event, programme(basis="points", tiers=POINT_TIERS))
    assert earned_move is not None
    assert (earned_move.kind, earned_move.unit, earned_move.amount) == (
        MovementKind.ADD_MORE,
        "points",
        10,
    )


def test_spending_points_never_moves_the_qualifying_total() -> None:
    redeemed = PointsRedeemed(
        entry_id="e-2", customer_id="c-1", delta=-10, balance_after=0, reason="reward"
    )
    event = make_event("points.redeemed", source="s", subject="c-1", data=redeemed)

    assert (
        movement_of(incoming(event, "loyalty.points"), programme(basis="points", tiers=POINT_TIERS))
        is None
    )


POINT_TIERS: list[dict[str, Any]] = [
    {"code": "insider", "name": "Insider"},
    {"code": "vib", "name": "VIB", "enter": 500},
]


def test_membership_of_a_known_tier_becomes_a_floor_and_an_unknown_one_is_rejected() -> None:
    data = MembershipPurchased(
        customer_id="c-1",
        tier="gold",
        starts_at=AT,
        ends_at=AT + timedelta(days=30),
        order_id="m-1",
    )
    event = make_event("membership.purchased", source="s", subject="c-1", data=data)
    unknown = make_event(
        "membership.purchased",
        source="s",
        subject="c-1",
        data=data.model_copy(update={"tier": "diamond"}),
    )

    granted = membership_floor(incoming(event, "loyalty.memberships"), programme())
    refused = membership_floor(incoming(unknown, "loyalty.memberships"), programme())

    assert not isinstance(granted, RejectedMessage) and granted is not None
    customer, floor, _ = granted
    assert (customer, floor.tier, floor.ends_at) == (
        ("default", "c-1"),
        "gold",
        AT + timedelta(days=30),
    )
    assert isinstance(refused, RejectedMessage)
    assert refused.error_class == "UnknownTier"


def test_membership_must_end_after_it_starts() -> None:
    with pytest.raises(ValidationError, match="ends_at must be later than starts_at"):
        MembershipPurchased(customer_id="c", tier="gold", starts_at=AT, ends_at=AT, order_id="m")


CHANGE = TierChange(
    "default", "c-1", "member", "silver", "up", "qualified", AT, "VND", Decimal(5_000_000)
)


def test_tier_changed_carries_the_new_tiers_multiplier_name_and_benefits() -> None:
    prog = programme()

    message = tier_changed(prog, CHANGE, change_id(CHANGE))

    body = json.loads(message.value)
    assert (message.topic, message.key) == ("loyalty.tiers", b"c-1")
    assert body["id"] == change_id(CHANGE)
    assert body["data"]["multiplier"] == "1.25"
    assert body["data"]["tier_name"] == "Silver"
    assert (body["data"]["basis"], body["data"]["currency"]) == ("spend", "VND")


def test_change_ids_depend_on_customer_tiers_and_time_only() -> None:
    later = TierChange(
        "default", "c-1", "member", "silver", "up", "backfill", AT, "VND", Decimal(1)
    )
    other_time = TierChange(
        "default",
        "c-1",
        "member",
        "silver",
        "up",
        "qualified",
        AT + timedelta(seconds=1),
        "VND",
        Decimal(5),
    )

    assert change_id(CHANGE) == change_id(later)
    assert change_id(CHANGE) != change_id(other_time)


def test_tier_at_risk_says_how_much_more_by_when() -> None:
    warning = AtRisk("default", "c-1", "silver", Decimal(1_000_000), "VND", AT)

    body = json.loads(tier_at_risk(programme(), warning, now=AT).value)

    assert body["type"] == "tier.at_risk"
    assert (body["data"]["needed_amount"], body["data"]["currency"]) == ("1000000", "VND")


def test_multiplier_below_one_is_refused_by_the_contract() -> None:
    with pytest.raises(ValidationError, match="must be at least 1"):
        TierChanged(
            customer_id="c",
            from_tier="a",
            to_tier="b",
            direction="up",
            reason="qualified",
            qualifying_amount=Decimal(1),
            basis="points",
            effective_at=AT,
            multiplier=Decimal("0.5"),
        )
