"""Progress: how much more reaches the next tier and by when; what keeps the current one."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from tiering_builders import activity, fresh, local, programme

from services.tiering.domain.lifecycle import record_activity
from services.tiering.domain.progress import progress

HCM = "Asia/Ho_Chi_Minh"


def test_progress_to_the_next_tier_in_a_rolling_window_has_no_deadline() -> None:
    prog = programme()
    act = activity((date(2026, 3, 1), "6000000"))
    state = record_activity(prog, fresh("c", prog), act, [], local(HCM, 2026, 3, 1), added=True)

    seen = progress(prog, state.state, act, local(HCM, 2026, 4, 1))

    assert seen.next is not None
    assert (seen.next.tier, seen.next.needed, seen.next.deadline) == (
        "gold",
        {"VND": Decimal(9_000_000)},
        None,
    )
    assert seen.keep is not None
    assert (seen.keep.needed, seen.keep.deadline) == ({"VND": Decimal(0)}, local(HCM, 2027, 3, 1))


def test_progress_in_a_calendar_year_is_due_by_the_shops_new_year() -> None:
    prog = programme(window={"kind": "calendar_year"}, zone="America/New_York")
    act = activity((date(2026, 11, 1), "1000000"))

    seen = progress(prog, fresh("c", prog), act, local("America/New_York", 2026, 11, 2))

    assert seen.next is not None
    assert seen.next.needed == {"VND": Decimal(4_000_000)}
    assert seen.next.deadline == local("America/New_York", 2027, 1, 1)
    assert seen.keep is None


def test_keeping_counts_only_what_falls_in_the_period_under_review() -> None:
    prog = programme()
    act = activity((date(2026, 3, 1), "6000000"))
    state = record_activity(prog, fresh("c", prog), act, [], local(HCM, 2026, 3, 1), added=True)
    act.add("VND", date(2026, 3, 1), Decimal(-3_000_000))

    seen = progress(prog, state.state, act, local(HCM, 2026, 9, 1))

    assert seen.keep is not None
    assert seen.keep.needed == {"VND": Decimal(1_000_000)}


def test_the_top_tier_has_nothing_next() -> None:
    prog = programme()
    act = activity((date(2026, 3, 1), "40000000"))
    state = record_activity(prog, fresh("c", prog), act, [], local(HCM, 2026, 3, 1), added=True)

    assert progress(prog, state.state, act, local(HCM, 2026, 3, 2)).next is None
