"""Planning the coalition sweep: a member shop's balance moves whole, by pairs that cancel out,
open lots keep their dates net of what was spent or expired, only what came after the last
sweep counts, ids are the same when planned again, and a currency the coalition does not earn
in refuses the shop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.earn.domain.expiry import LedgerLine, Lot
from services.earn.domain.ledger import NewEntry
from services.earn.domain.sweep import (
    JOINED,
    ShopCredit,
    ShopPoints,
    carried_credit,
    carried_points,
    missing_currencies,
    open_lots,
)

T0 = datetime(2026, 1, 10, 3, 0, tzinfo=UTC)
SWEPT_AT = datetime(2026, 5, 1, tzinfo=UTC)
E1, E2 = datetime(2027, 1, 10, tzinfo=UTC), datetime(2027, 3, 10, tzinfo=UTC)


def earned(points: int, expires_at: datetime | None, order: str | None = None) -> LedgerLine:
    return LedgerLine("earned", "order.paid", points, order, expires_at, T0)


def line(kind: str, delta: int, reason: str = "x", order: str | None = None) -> LedgerLine:
    return LedgerLine(kind, reason, delta, order, None, T0 + timedelta(days=1))


def summary(entries: list[NewEntry]) -> list[tuple[str, int, datetime | None, str | None]]:
    return [(e.shop_id, e.delta, e.expires_at, e.at_shop) for e in entries]


def test_two_lots_move_keeping_their_dates_net_of_what_was_redeemed() -> None:
    lines = [earned(100, E1, "o1"), earned(50, E2, "o2"), line("redeemed", -30)]
    account = ShopPoints("n", "cust", 120, 7, lines)

    entries = carried_points(account, "c", at=SWEPT_AT)

    assert summary(entries) == [
        ("n", -70, None, None),
        ("c", 70, E1, "n"),
        ("n", -50, None, None),
        ("c", 50, E2, "n"),
    ]
    assert {(e.kind, e.reason, e.occurred_at) for e in entries} == {("adjusted", JOINED, SWEPT_AT)}


def test_points_without_a_date_move_as_one_pair_after_the_lots() -> None:
    lines = [earned(40, E1), line("adjusted", 25, "goodwill")]
    account = ShopPoints("n", "cust", 65, 3, lines)

    assert summary(carried_points(account, "c", at=SWEPT_AT)) == [
        ("n", -40, None, None),
        ("c", 40, E1, "n"),
        ("n", -25, None, None),
        ("c", 25, None, "n"),
    ]


def test_a_negative_balance_moves_too() -> None:
    account = ShopPoints("n", "cust", -20, 9, [line("reversed", -20, "order.refunded", "o9")])

    assert summary(carried_points(account, "c", at=SWEPT_AT)) == [
        ("n", 20, None, None),
        ("c", -20, None, "n"),
    ]


def test_only_entries_after_the_last_sweep_make_the_lots() -> None:
    swept = [
        earned(100, E1, "o1"),
        LedgerLine("adjusted", JOINED, -100, None, None, SWEPT_AT),
        earned(30, E2, "late"),
    ]

    assert open_lots(swept, 30) == [Lot(E2, 30)]


def test_lots_never_hold_more_than_the_balance() -> None:
    # A refund of an order swept before: the lot of a later order holds more than remains.
    lines = [earned(50, E1, "o1"), line("reversed", -20, "order.refunded", "o0")]

    assert open_lots(lines, 30) == [Lot(E1, 30)]


def test_planning_again_gives_the_same_ids_and_another_account_state_others() -> None:
    account = ShopPoints("n", "cust", 10, 4, [earned(10, E1)])
    later = ShopPoints("n", "cust", 10, 5, [earned(10, E1)])

    first = [e.entry_id for e in carried_points(account, "c", at=SWEPT_AT)]
    again = [e.entry_id for e in carried_points(account, "c", at=SWEPT_AT + timedelta(hours=1))]
    other = [e.entry_id for e in carried_points(later, "c", at=SWEPT_AT)]

    assert first == again
    assert len(set(first)) == 2
    assert not set(first) & set(other)


def test_store_credit_moves_in_its_currency() -> None:
    credit = ShopCredit("n", "cust", "VND", 5000, 11)

    entries = carried_credit(credit, "c", at=SWEPT_AT)

    assert [(e.shop_id, e.delta, e.balance_kind, e.currency, e.at_shop) for e in entries] == [
        ("n", -5000, "store_credit", "VND", None),
        ("c", 5000, "store_credit", "VND", "n"),
    ]
    assert carried_credit(ShopCredit("n", "cust", "VND", 0, 11), "c", at=SWEPT_AT) == []


def test_a_currency_the_coalition_does_not_earn_in_is_missing() -> None:
    assert missing_currencies({"VND"}, {"VND", "USD"}) == []
    assert missing_currencies({"VND", "THB"}, {"VND"}) == ["THB"]


lines_strategy = st.lists(
    st.one_of(
        st.builds(earned, st.integers(1, 500), st.sampled_from([E1, E2, None])),
        st.builds(line, st.just("redeemed"), st.integers(-300, -1)),
        st.builds(line, st.just("expired"), st.integers(-300, -1)),
        st.builds(line, st.just("reversed"), st.integers(-300, -1), st.just("r"), st.just("o")),
    ),
    max_size=8,
)


@given(lines_strategy)
def test_the_whole_balance_moves_and_each_pair_cancels_out(lines: list[LedgerLine]) -> None:
    balance = sum(x.delta for x in lines)
    entries = carried_points(ShopPoints("n", "cust", balance, 1, lines), "c", at=SWEPT_AT)

    assert sum(e.delta for e in entries) == 0
    assert sum(e.delta for e in entries if e.shop_id == "c") == balance
    assert all(e.delta > 0 for e in entries if e.expires_at is not None)
    assert len({e.entry_id for e in entries}) == len(entries)
