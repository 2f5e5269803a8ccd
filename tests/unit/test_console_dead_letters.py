"""The operations page's choice of dead letters (whose, which topics) and the time it shows."""

from __future__ import annotations

from datetime import UTC, datetime

from services.console.dead_letters import Scope, dead_lettered_at
from services.dlq.records import DeadLetter


def test_a_shops_scope_reads_only_the_topics_of_its_positions() -> None:
    positions = frozenset({("shop.orders.dlq", 0, 2), ("shop.carts.dlq", 1, 4)})
    selection = Scope("vn-fashion", shopless=False).selection(positions=positions)
    one_topic = Scope("vn-fashion", shopless=True).selection("shop.orders", error_class="X")

    assert selection.topics == ["shop.carts.dlq", "shop.orders.dlq"]
    assert (selection.shop, selection.shopless, selection.positions) == (
        "vn-fashion",
        False,
        positions,
    )
    assert (one_topic.topics, one_topic.error_class, one_topic.shopless) == (
        ["shop.orders.dlq"],
        "X",
        True,
    )


def test_the_time_shown_is_the_dead_letter_header_else_the_records_timestamp() -> None:
    stamped = DeadLetter(
        "shop.orders.dlq", 0, 0, 0, None, b"{}", (("x-dlq-time", b"2026-03-01T10:15:00+07:00"),)
    )
    unstamped = DeadLetter("shop.orders.dlq", 0, 0, 1_700_000_000_000, None, b"{}", ())

    assert dead_lettered_at(stamped) == datetime(2026, 3, 1, 3, 15, tzinfo=UTC)
    assert dead_lettered_at(unstamped) == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
