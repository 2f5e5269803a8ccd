"""Per-order contributions: net of refunds and cancellations, never below zero, order-proof."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from services.tiering.domain.contributions import (
    ContributionBook,
    Delta,
    Movement,
    MovementKind,
    Refused,
)

AT = datetime(2026, 5, 1, tzinfo=UTC)
DAY = date(2026, 5, 1)


def move(
    kind: MovementKind,
    amount: str | None = None,
    *,
    key: str = "o-1",
    unit: str | None = "VND",
    event: str = "e",
    at: datetime = AT,
) -> Movement:
    return Movement(
        event_id=event,
        shop_id="default",
        customer_id="c",
        key=key,
        kind=kind,
        unit=unit,
        amount=None if amount is None else Decimal(amount),
        day=DAY,
        at=at,
    )


def paid(amount: str, **kw: Any) -> Movement:
    return move(MovementKind.ADD, amount, **kw)


def refund(amount: str | None, **kw: Any) -> Movement:
    return move(MovementKind.REMOVE, amount, **kw)


def cancel(**kw: Any) -> Movement:
    return move(MovementKind.CLOSE, unit=None, **kw)


def amounts(deltas: list[Delta] | Refused) -> list[Decimal]:
    assert not isinstance(deltas, Refused)
    return [d.amount for d in deltas]


def test_paid_order_adds_its_total_on_the_day_it_was_paid() -> None:
    book = ContributionBook()
    [delta] = book.apply(paid("259000"))  # type: ignore[misc]
    assert (delta.unit, delta.day, delta.amount) == ("VND", DAY, 259_000)


def test_partial_refund_subtracts_the_refund_amount() -> None:
    book = ContributionBook()
    book.apply(paid("1000"))
    assert amounts(book.apply(refund("300"))) == [-300]
    assert book.contributions[("default", "c", "o-1")].net == 700


def test_cancel_after_a_partial_refund_subtracts_only_what_is_left() -> None:
    book = ContributionBook()
    book.apply(paid("1000"))
    book.apply(refund("300"))
    assert amounts(book.apply(cancel())) == [-700]
    assert book.contributions[("default", "c", "o-1")].net == 0


def test_full_refund_takes_back_everything_left_whatever_it_states() -> None:
    book = ContributionBook()
    book.apply(paid("1000"))
    book.apply(refund("100"))
    assert amounts(book.apply(refund(None))) == [-900]


def test_refunding_more_than_was_paid_stops_at_zero() -> None:
    book = ContributionBook()
    book.apply(paid("1000"))
    assert amounts(book.apply(refund("5000"))) == [-1000]
    assert amounts(book.apply(refund("1"))) == []


def test_the_same_order_paid_twice_counts_once() -> None:
    book = ContributionBook()
    book.apply(paid("1000", event="a"))
    assert amounts(book.apply(paid("1000", event="b"))) == []


def test_refund_dated_before_its_order_is_parked_then_applied_with_the_order() -> None:
    book = ContributionBook()
    assert amounts(book.apply(refund("400", event="r", at=AT - timedelta(seconds=1)))) == []
    assert [m.event_id for m in book.newly_parked] == ["r"]

    assert amounts(book.apply(paid("1000", event="p"))) == [1000, -400]
    assert book.newly_parked == book.take_following() == []
    assert book.contributions[("default", "c", "o-1")].net == 600


def test_refunds_dated_at_or_after_their_order_follow_it_in_event_time_order() -> None:
    book = ContributionBook()
    book.apply(cancel(event="c", at=AT + timedelta(hours=1)))
    book.apply(refund("400", event="r", at=AT))

    assert amounts(book.apply(paid("1000", event="p"))) == [1000]
    following = book.take_following()
    assert [(f.movement.event_id, [d.amount for d in f.deltas]) for f in following] == [
        ("r", [-400]),
        ("c", [-600]),
    ]
    assert book.newly_parked == book.take_following() == []
    assert book.contributions[("default", "c", "o-1")].net == 0


def test_parked_refunds_wait_for_an_order_that_counts() -> None:
    book = ContributionBook()
    book.apply(refund("400", event="r", at=AT - timedelta(seconds=1)))

    assert amounts(book.apply(paid("0", event="p"))) == []
    assert [m.event_id for m in book.newly_parked] == ["r"]


def test_stored_parked_movements_are_released_for_deletion_once_applied() -> None:
    parked = refund("400", event="r")
    book = ContributionBook.of([], [parked])

    book.apply(paid("1000", event="p"))

    assert book.released_stored == ["r"]
    assert book.newly_parked == []


def test_a_refund_in_another_currency_than_its_order_is_refused() -> None:
    book = ContributionBook()
    book.apply(paid("1000"))
    refused = book.apply(refund("10", unit="USD"))
    assert isinstance(refused, Refused)
    assert "USD" in refused.reason
    assert book.contributions[("default", "c", "o-1")].net == 1000


def test_earned_points_accumulate_on_their_source() -> None:
    book = ContributionBook()
    book.apply(move(MovementKind.ADD_MORE, "100", unit="points"))
    book.apply(move(MovementKind.ADD_MORE, "50", unit="points"))
    assert book.contributions[("default", "c", "o-1")].net == 150


movements = st.lists(
    st.tuples(
        st.sampled_from(["paid", "refund", "full", "cancel"]),
        st.sampled_from(["o-1", "o-2"]),
        st.integers(1, 10_000),
    ),
    max_size=25,
)


def step(kind: str, key: str, amount: int, event: str) -> Movement:
    if kind == "paid":
        return paid(str(amount), key=key, event=event)
    if kind == "refund":
        return refund(str(amount), key=key, event=event)
    if kind == "full":
        return refund(None, key=key, event=event)
    return cancel(key=key, event=event)


@given(steps=movements)
def test_the_qualifying_total_never_goes_negative_and_matches_the_deltas(
    steps: list[tuple[str, str, int]],
) -> None:
    book = ContributionBook()
    total = Decimal(0)
    for n, (kind, key, amount) in enumerate(steps):
        total += sum(amounts(book.apply(step(kind, key, amount, str(n)))), Decimal(0))
        total += sum((d.amount for f in book.take_following() for d in f.deltas), Decimal(0))
        assert total >= 0
        for contribution in book.contributions.values():
            assert 0 <= contribution.removed <= contribution.added
    assert total == sum((c.net for c in book.contributions.values()), Decimal(0))
