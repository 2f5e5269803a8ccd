"""Tier rules over time: upgrades, reviews, grace, floors and warnings, in several time zones."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tiering_builders import activity, fresh, local, programme

from services.tiering.domain.activity import Activity
from services.tiering.domain.calendar import local_day
from services.tiering.domain.in_force import effective_tier
from services.tiering.domain.lifecycle import Outcome, advance, next_due, record_activity
from services.tiering.domain.rules import Programme
from services.tiering.domain.state import Floor, FloorKind, TierState

HCM = "Asia/Ho_Chi_Minh"


def pay(
    prog: Programme,
    state: TierState,
    act: Activity,
    at: datetime,
    amount: str,
    floors: list[Floor] | None = None,
) -> Outcome:
    """An order paid at `at`: catch up, count it, apply the rules."""
    out = advance(prog, state, act, floors or [], at)
    act.add("VND", local_day(at, prog.zone), Decimal(amount))
    return out.extend(record_activity(prog, out.state, act, floors or [], at, added=True))


def take_back(
    prog: Programme, state: TierState, act: Activity, at: datetime, paid_at: datetime, amount: str
) -> Outcome:
    """A refund at `at` of an order paid at `paid_at` (counted on the day it was paid)."""
    out = advance(prog, state, act, [], at)
    act.add("VND", local_day(paid_at, prog.zone), -Decimal(amount))
    return out.extend(record_activity(prog, out.state, act, [], at, added=False))


def test_crossing_a_threshold_upgrades_at_the_time_of_the_order() -> None:
    prog = programme()
    at = local(HCM, 2026, 3, 1, 10)

    out = pay(prog, fresh("c", prog), activity(), at, "5000000")

    [change] = out.changes
    assert (change.from_tier, change.to_tier, change.direction) == ("member", "silver", "up")
    assert (change.reason, change.effective_at, change.amount) == ("qualified", at, 5_000_000)
    assert out.state.review_at == local(HCM, 2027, 3, 1)


def test_one_order_crossing_two_thresholds_goes_straight_to_the_higher_tier() -> None:
    prog = programme()

    out = pay(prog, fresh("c", prog), activity(), local(HCM, 2026, 3, 1, 10), "16000000")

    assert [(c.from_tier, c.to_tier) for c in out.changes] == [("member", "gold")]


def test_invite_only_tiers_are_never_reached_by_spending() -> None:
    prog = programme()

    out = pay(prog, fresh("c", prog), activity(), local(HCM, 2026, 3, 1), "900000000")

    assert out.state.tier == "platinum"


def test_spending_below_the_next_threshold_changes_nothing() -> None:
    prog = programme()

    out = pay(prog, fresh("c", prog), activity(), local(HCM, 2026, 3, 1), "4999999")

    assert (out.changes, out.state.tier) == ([], "member")


def test_a_refund_below_keep_waits_for_the_end_of_the_period() -> None:
    prog = programme()
    act = activity()
    paid_at = local(HCM, 2026, 3, 1, 10)
    silver = pay(prog, fresh("c", prog), act, paid_at, "6000000").state

    refunded = take_back(prog, silver, act, local(HCM, 2026, 4, 1), paid_at, "3000000")
    before_review = advance(prog, refunded.state, act, [], local(HCM, 2027, 2, 28, 23, 59))
    at_review = advance(prog, before_review.state, act, [], local(HCM, 2027, 3, 1))

    assert refunded.changes == before_review.changes == []
    [change] = at_review.changes
    assert (change.to_tier, change.reason) == ("member", "period_review")
    assert change.effective_at == local(HCM, 2027, 3, 1)
    assert change.amount == 3_000_000


def test_a_tier_whose_keep_threshold_is_met_is_kept_for_another_period() -> None:
    prog = programme()
    act = activity()
    silver = pay(prog, fresh("c", prog), act, local(HCM, 2026, 3, 1, 10), "6000000")

    out = advance(prog, silver.state, act, [], local(HCM, 2027, 3, 1))

    assert out.changes == []
    assert out.state.review_at == local(HCM, 2028, 2, 29)


def test_a_review_judges_only_the_period_that_just_ended() -> None:
    prog = programme()
    act = activity()
    early = pay(prog, fresh("c", prog), act, local(HCM, 2026, 3, 1, 10), "4500000")
    silver = pay(prog, early.state, act, local(HCM, 2026, 3, 2, 10), "500000")

    out = advance(prog, silver.state, act, [], local(HCM, 2027, 3, 2))

    # Reached on 2 March 2026; the review a year later counts 2 March 2026 to 1 March 2027.
    [change] = out.changes
    assert (change.to_tier, change.amount) == ("member", 500_000)


def test_one_step_downgrade_drops_a_single_tier_even_with_nothing_spent() -> None:
    prog = programme()
    act = activity()
    platinum = pay(prog, fresh("c", prog), act, local(HCM, 2026, 1, 5), "40000000")
    act.add("VND", date(2026, 1, 5), Decimal(-40_000_000))  # all refunded

    out = advance(prog, platinum.state, act, [], local(HCM, 2027, 1, 5))

    assert [(c.from_tier, c.to_tier) for c in out.changes] == [("platinum", "gold")]
    assert out.state.review_at == local(HCM, 2028, 1, 5)


def test_to_qualifying_downgrade_lands_on_the_tier_the_total_keeps() -> None:
    prog = programme(downgrade={"mode": "end_of_period", "steps": "to_qualifying"})
    act = activity()
    platinum = pay(prog, fresh("c", prog), act, local(HCM, 2026, 1, 5), "40000000")
    act.add("VND", date(2026, 1, 5), Decimal(-35_000_000))

    out = advance(prog, platinum.state, act, [], local(HCM, 2027, 1, 5))

    assert [(c.from_tier, c.to_tier) for c in out.changes] == [("platinum", "silver")]


def test_downgrade_mode_never_keeps_a_tier_forever() -> None:
    prog = programme(downgrade={"mode": "never"})
    act = activity()
    gold = pay(prog, fresh("c", prog), act, local(HCM, 2026, 1, 5), "15000000")

    out = advance(prog, gold.state, act, [], local(HCM, 2036, 1, 5))

    assert (out.changes, out.state.tier, next_due(prog, out.state, act, [])) == ([], "gold", None)


def test_a_late_evaluation_applies_each_missed_review_at_its_own_time() -> None:
    prog = programme()
    act = activity()
    platinum = pay(prog, fresh("c", prog), act, local(HCM, 2026, 1, 5), "40000000")

    out = advance(prog, platinum.state, act, [], local(HCM, 2029, 6, 1))

    assert [(c.to_tier, c.effective_at) for c in out.changes] == [
        ("gold", local(HCM, 2028, 1, 5)),
        ("silver", local(HCM, 2029, 1, 4)),
    ]


@pytest.mark.parametrize("zone", ["Asia/Ho_Chi_Minh", "America/New_York", "Pacific/Auckland"])
def test_calendar_year_review_falls_on_the_shops_new_year(zone: str) -> None:
    prog = programme(zone=zone, window={"kind": "calendar_year"})
    act = activity()
    silver = pay(prog, fresh("c", prog), act, local(zone, 2026, 12, 31, 23, 30), "5000000")

    kept = advance(prog, silver.state, act, [], local(zone, 2027, 1, 1))
    dropped = advance(prog, kept.state, act, [], local(zone, 2028, 1, 1))

    assert silver.state.review_at == local(zone, 2027, 1, 1)
    assert kept.changes == []
    assert [(c.to_tier, c.effective_at) for c in dropped.changes] == [
        ("member", local(zone, 2028, 1, 1))
    ]


def test_calendar_year_counts_the_order_in_the_shops_year_not_utcs() -> None:
    # 17:30 UTC on 31 December is already 1 January in Ho Chi Minh City (UTC+7).
    prog = programme(window={"kind": "calendar_year"})
    act = activity()
    first = pay(prog, fresh("c", prog), act, datetime(2026, 6, 1, tzinfo=UTC), "3000000")

    out = pay(prog, first.state, act, datetime(2026, 12, 31, 17, 30, tzinfo=UTC), "3000000")

    assert out.changes == []
    assert local_day(datetime(2026, 12, 31, 17, 30, tzinfo=UTC), prog.zone) == date(2027, 1, 1)


def test_rolling_window_forgets_orders_older_than_its_days() -> None:
    prog = programme(window={"kind": "rolling", "days": 30})
    act = activity()
    first = pay(prog, fresh("c", prog), act, local(HCM, 2026, 1, 1, 12), "3000000")

    inside = pay(
        prog,
        first.state,
        Activity(act.since, dict(act.before), {"VND": dict(act.days["VND"])}),
        local(HCM, 2026, 1, 30, 12),
        "2000000",
    )
    outside = pay(prog, first.state, act, local(HCM, 2026, 1, 31, 12), "2000000")

    assert [c.to_tier for c in inside.changes] == ["silver"]
    assert outside.changes == []


def test_grace_starts_when_orders_roll_off_and_downgrades_when_it_ends() -> None:
    prog = programme(
        window={"kind": "rolling", "days": 30}, downgrade={"mode": "grace", "grace_days": 14}
    )
    act = activity()
    silver = pay(prog, fresh("c", prog), act, local(HCM, 2026, 1, 1, 12), "5000000")

    rolled = advance(prog, silver.state, act, [], local(HCM, 2026, 2, 5))
    ended = advance(prog, rolled.state, act, [], local(HCM, 2026, 2, 20))

    assert rolled.changes == []
    assert rolled.state.below_since == local(HCM, 2026, 1, 31)
    [warning] = rolled.warnings
    assert (warning.needed, warning.deadline) == (4_000_000, local(HCM, 2026, 2, 14))
    assert [(c.to_tier, c.reason, c.effective_at) for c in ended.changes] == [
        ("member", "grace_expired", local(HCM, 2026, 2, 14))
    ]


def test_buying_during_grace_keeps_the_tier() -> None:
    prog = programme(
        window={"kind": "rolling", "days": 30}, downgrade={"mode": "grace", "grace_days": 14}
    )
    act = activity()
    silver = pay(prog, fresh("c", prog), act, local(HCM, 2026, 1, 1, 12), "5000000")
    rolled = advance(prog, silver.state, act, [], local(HCM, 2026, 2, 5))

    recovered = pay(prog, rolled.state, act, local(HCM, 2026, 2, 6), "4000000")
    later = advance(prog, recovered.state, act, [], local(HCM, 2026, 2, 20))

    assert recovered.state.below_since is None
    assert later.changes == []
    assert later.state.tier == "silver"


def test_grace_with_a_calendar_year_still_counts_last_year_until_the_next_new_year() -> None:
    prog = programme(
        window={"kind": "calendar_year"}, downgrade={"mode": "grace", "grace_days": 30}
    )
    act = activity()
    silver = pay(prog, fresh("c", prog), act, local(HCM, 2026, 5, 1), "5000000")

    next_year = advance(prog, silver.state, act, [], local(HCM, 2027, 12, 31))
    year_after = advance(prog, next_year.state, act, [], local(HCM, 2028, 2, 1))

    assert next_year.changes == []
    assert [(c.to_tier, c.effective_at) for c in year_after.changes] == [
        ("member", local(HCM, 2028, 1, 31))
    ]


def test_a_refund_in_grace_mode_starts_the_grace_period_at_once() -> None:
    prog = programme(downgrade={"mode": "grace", "grace_days": 10}, window={"kind": "lifetime"})
    act = activity()
    paid_at = local(HCM, 2026, 1, 1)
    silver = pay(prog, fresh("c", prog), act, paid_at, "5000000")

    refunded = take_back(prog, silver.state, act, local(HCM, 2026, 1, 3), paid_at, "2000000")

    assert refunded.state.below_since == local(HCM, 2026, 1, 3)
    [warning] = refunded.warnings
    assert (warning.tier, warning.needed, warning.deadline) == (
        "silver",
        1_000_000,
        local(HCM, 2026, 1, 13),
    )


def test_warning_comes_warn_days_before_a_review_that_would_drop() -> None:
    prog = programme(warn_days=30)
    act = activity()
    paid_at = local(HCM, 2026, 3, 1, 10)
    silver = pay(prog, fresh("c", prog), act, paid_at, "6000000")
    act.add("VND", date(2026, 3, 1), Decimal(-3_000_000))

    too_early = advance(prog, silver.state, act, [], local(HCM, 2027, 1, 29))
    warned = advance(prog, too_early.state, act, [], local(HCM, 2027, 1, 31))
    again = advance(prog, warned.state, act, [], local(HCM, 2027, 2, 15))

    assert too_early.warnings == []
    [warning] = warned.warnings
    assert (warning.needed, warning.deadline) == (1_000_000, local(HCM, 2027, 3, 1))
    assert again.warnings == []


def test_no_warning_when_the_keep_threshold_is_already_met() -> None:
    prog = programme()
    act = activity()
    silver = pay(prog, fresh("c", prog), act, local(HCM, 2026, 3, 1, 10), "6000000")

    out = advance(prog, silver.state, act, [], local(HCM, 2027, 2, 27))

    assert out.warnings == []


def test_a_manual_floor_raises_the_tier_until_its_end_and_then_expires() -> None:
    prog = programme()
    act = activity()
    silver = pay(prog, fresh("c", prog), act, local(HCM, 2026, 3, 1), "6000000")
    floor = Floor(
        FloorKind.MANUAL, "manual", "black", local(HCM, 2026, 4, 1), local(HCM, 2026, 5, 1), "VIP"
    )

    raised = advance(prog, silver.state, act, [floor], local(HCM, 2026, 4, 1))
    ended = advance(prog, raised.state, act, [floor], local(HCM, 2026, 6, 1))

    assert [(c.to_tier, c.reason) for c in raised.changes] == [("black", "manual")]
    assert [(c.to_tier, c.reason, c.effective_at) for c in ended.changes] == [
        ("silver", "manual_ended", local(HCM, 2026, 5, 1))
    ]
    assert ended.state.earned == "silver"


def test_a_floor_below_the_earned_tier_changes_nothing() -> None:
    prog = programme()
    act = activity()
    gold = pay(prog, fresh("c", prog), act, local(HCM, 2026, 3, 1), "16000000")
    floor = Floor(
        FloorKind.MEMBERSHIP,
        "m-1",
        "silver",
        local(HCM, 2026, 3, 2),
        local(HCM, 2026, 4, 2),
        "paid",
    )

    out = advance(prog, gold.state, act, [floor], local(HCM, 2026, 5, 1))

    assert out.changes == []
    assert effective_tier(prog, "gold", [floor], local(HCM, 2026, 3, 10)) == "gold"


def test_a_downgrade_under_a_floor_is_not_published_until_the_floor_ends() -> None:
    prog = programme()
    act = activity()
    silver = pay(prog, fresh("c", prog), act, local(HCM, 2026, 3, 1), "5000000")
    floor = Floor(
        FloorKind.MEMBERSHIP, "m-1", "gold", local(HCM, 2026, 12, 1), local(HCM, 2028, 6, 1), "paid"
    )

    out = advance(prog, silver.state, act, [floor], local(HCM, 2028, 7, 1))

    assert [(c.from_tier, c.to_tier, c.reason) for c in out.changes] == [
        ("silver", "gold", "membership"),
        ("gold", "member", "membership_ended"),
    ]


def test_an_event_older_than_the_last_evaluation_counts_as_of_that_evaluation() -> None:
    prog = programme()
    act = activity()
    evaluated = advance(prog, fresh("c", prog), act, [], local(HCM, 2026, 3, 1)).state

    out = pay(prog, evaluated, act, local(HCM, 2026, 2, 1), "5000000")

    assert [c.effective_at for c in out.changes] == [local(HCM, 2026, 3, 1)]


amounts = st.lists(
    st.tuples(st.integers(0, 800), st.integers(1, 20_000_000)), min_size=1, max_size=12
)


@given(orders=amounts, later=st.integers(0, 2000))
def test_evaluating_twice_at_the_same_instant_changes_nothing_the_second_time(
    orders: list[tuple[int, int]], later: int
) -> None:
    prog = programme()
    act = activity()
    start = local(HCM, 2026, 1, 1)
    state = fresh("c", prog)
    for day, amount in sorted(orders):
        state = pay(prog, state, act, start + timedelta(days=day), str(amount)).state
    at = start + timedelta(days=later)

    once = advance(prog, state, act, [], at)
    twice = advance(prog, once.state, act, [], at)

    assert (twice.changes, twice.warnings, twice.state) == ([], [], once.state)


@given(orders=amounts)
def test_upgrading_then_evaluating_at_the_same_time_is_idempotent(
    orders: list[tuple[int, int]],
) -> None:
    prog = programme()
    act = activity()
    start = local(HCM, 2026, 1, 1)
    state = fresh("c", prog)
    last = start
    for day, amount in sorted(orders):
        last = start + timedelta(days=day)
        state = pay(prog, state, act, last, str(amount)).state

    out = advance(prog, state, act, [], last)

    assert (out.changes, out.state) == ([], state)


@given(orders=amounts, step=st.integers(1, 400))
def test_evaluating_often_or_once_ends_in_the_same_tier(
    orders: list[tuple[int, int]], step: int
) -> None:
    prog = programme(warn_days=0)
    act = activity()
    start = local(HCM, 2026, 1, 1)
    state = fresh("c", prog)
    for day, amount in sorted(orders):
        state = pay(prog, state, act, start + timedelta(days=day), str(amount)).state
    end = start + timedelta(days=3000)

    once = advance(prog, state, act, [], end)
    often = state
    at = start
    while at < end:
        at = min(at + timedelta(days=step), end)
        often = advance(prog, often, act, [], at).state

    assert often.tier == once.state.tier
    assert often.review_at == once.state.review_at


TWO_CURRENCIES: list[dict[str, Any]] = [
    {"code": "member", "name": "Member"},
    {"code": "silver", "name": "Silver", "enter": {"VND": "5000000", "USD": "200"}},
    {"code": "gold", "name": "Gold", "enter": {"VND": "15000000", "USD": "600"}},
]


def test_each_currency_qualifies_on_its_own_and_totals_are_never_converted() -> None:
    prog = programme(tiers=TWO_CURRENCIES)
    act = activity()
    at = local(HCM, 2026, 3, 1)
    act.add("VND", date(2026, 3, 1), Decimal(4_900_000))
    act.add("USD", date(2026, 3, 1), Decimal(150))
    below = record_activity(prog, fresh("c", prog), act, [], at, added=True)
    act.add("USD", date(2026, 3, 2), Decimal(60))

    out = record_activity(prog, below.state, act, [], local(HCM, 2026, 3, 2), added=True)

    assert below.changes == []
    [change] = out.changes
    assert (change.to_tier, change.unit, change.amount) == ("silver", "USD", 210)
