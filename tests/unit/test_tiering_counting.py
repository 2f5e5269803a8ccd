"""Movements counted in any delivery order give what their event-time order gives."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from tiering_builders import activity, fresh, local, programme

from services.tiering.domain.activity import Activity
from services.tiering.domain.calendar import local_day
from services.tiering.domain.contributions import ContributionBook, Movement, MovementKind
from services.tiering.domain.counting import Customer, count_movement
from services.tiering.domain.lifecycle import Outcome
from services.tiering.domain.rules import Programme

HCM = "Asia/Ho_Chi_Minh"
PAID_AT = local(HCM, 2026, 3, 1, 10)
NOW = local(HCM, 2027, 6, 1)
MODES: dict[str, dict[str, Any]] = {
    "never": {"mode": "never"},
    "end_of_period": {"mode": "end_of_period"},
    "grace": {"mode": "grace", "grace_days": 30},
}


def movement(
    prog: Programme, kind: MovementKind, at: datetime, amount: str | None = None
) -> Movement:
    return Movement(
        event_id=f"{kind}-{at.isoformat()}",
        shop_id="default",
        customer_id="c",
        key="o-1",
        kind=kind,
        unit=None if kind is MovementKind.CLOSE else "VND",
        amount=None if amount is None else Decimal(amount),
        day=local_day(at, prog.zone),
        at=at,
    )


def deliver(prog: Programme, *movements: Movement) -> tuple[Outcome, Activity]:
    """Count `movements` in the order given, as one consumer would receive them."""
    book, act = ContributionBook(), activity()
    out = Outcome(fresh("c", prog))
    for m in movements:
        out, refused = count_movement(prog, book, Customer(act, []), out, m, now=NOW)
        assert refused is None
    return out, act


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize(
    "after",
    [timedelta(0), timedelta(hours=1), timedelta(days=346)],
    ids=["same_instant", "an_hour_later", "in_the_warning_period"],
)
def test_a_cancellation_delivered_before_its_payment_counts_as_in_event_time_order(
    mode: str, after: timedelta
) -> None:
    prog = programme(downgrade=MODES[mode])
    paid = movement(prog, MovementKind.ADD, PAID_AT, "6000000")
    cancelled = movement(prog, MovementKind.CLOSE, PAID_AT + after)

    natural, natural_activity = deliver(prog, paid, cancelled)
    reversed_, reversed_activity = deliver(prog, cancelled, paid)

    [change] = natural.changes
    assert (change.to_tier, change.effective_at, change.amount) == ("silver", PAID_AT, 6_000_000)
    assert reversed_.changes == natural.changes
    assert reversed_.warnings == natural.warnings
    assert reversed_.state == natural.state
    assert reversed_activity == natural_activity
    assert natural_activity.days["VND"] == {local_day(PAID_AT, prog.zone): 0}


def test_a_cancellation_in_grace_mode_starts_the_grace_period_at_its_own_time() -> None:
    prog = programme(downgrade=MODES["grace"])
    cancelled_at = PAID_AT + timedelta(hours=1)
    paid = movement(prog, MovementKind.ADD, PAID_AT, "6000000")
    cancelled = movement(prog, MovementKind.CLOSE, cancelled_at)

    out, _ = deliver(prog, cancelled, paid)

    assert out.state.below_since == cancelled_at
    [warning] = out.warnings
    assert (warning.tier, warning.deadline) == ("silver", cancelled_at + timedelta(days=30))


def test_a_refund_dated_before_its_payment_counts_before_the_upgrade_check() -> None:
    prog = programme()
    paid = movement(prog, MovementKind.ADD, PAID_AT, "6000000")
    refunded = movement(prog, MovementKind.REMOVE, PAID_AT - timedelta(minutes=1), "2000000")

    out, act = deliver(prog, refunded, paid)

    assert (out.changes, out.state.tier) == ([], "member")
    assert act.days["VND"] == {local_day(PAID_AT, prog.zone): 4_000_000}


def test_refunds_on_both_sides_of_the_payment_apply_in_event_time_order() -> None:
    prog = programme()
    before = movement(prog, MovementKind.REMOVE, PAID_AT - timedelta(minutes=1), "500000")
    paid = movement(prog, MovementKind.ADD, PAID_AT, "6000000")
    after = movement(prog, MovementKind.REMOVE, PAID_AT + timedelta(minutes=1), "5000000")

    out, act = deliver(prog, after, before, paid)

    [change] = out.changes
    assert (change.to_tier, change.effective_at, change.amount) == ("silver", PAID_AT, 5_500_000)
    assert act.days["VND"] == {local_day(PAID_AT, prog.zone): 500_000}
    assert out.state.evaluated_until == after.at
