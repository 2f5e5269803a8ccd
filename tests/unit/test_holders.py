"""The holder of a shop's accounts by event time: the shop alone, or its coalition while it is a
member; the same whatever order the versions arrive in."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from shared.events.fields import EVENT_TIME_START
from shared.holders import Holders, Membership, shop_scoped

JOIN = datetime(2026, 3, 1, tzinfo=UTC)
LEAVE = datetime(2026, 6, 1, tzinfo=UTC)
REJOIN = datetime(2026, 9, 1, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def joined_left_rejoined() -> list[Membership]:
    return [
        Membership("a", 1, "c", JOIN),
        Membership("a", 2, None, LEAVE),
        Membership("a", 3, "c", REJOIN),
    ]


def holders_of(versions: list[Membership]) -> Holders:
    holders = Holders()
    for membership in versions:
        holders.add(membership)
    return holders


def test_a_shop_is_its_own_holder_before_its_first_version_and_the_coalition_from_it() -> None:
    holders = holders_of([Membership("a", 1, "c", JOIN)])

    assert holders.at("a", JOIN - SECOND) == "a"
    assert holders.at("a", JOIN) == "c"
    assert holders.at("a", JOIN + timedelta(days=400)) == "c"


def test_leaving_and_rejoining_switch_the_holder_at_each_start() -> None:
    holders = holders_of(joined_left_rejoined())

    assert [holders.at("a", t) for t in (JOIN, LEAVE - SECOND, LEAVE, REJOIN - SECOND, REJOIN)] == [
        "c",
        "c",
        "a",
        "a",
        "c",
    ]


def test_versions_added_in_any_order_give_the_same_holders() -> None:
    times = [JOIN - SECOND, JOIN, LEAVE, REJOIN - SECOND, REJOIN]
    expected = [holders_of(joined_left_rejoined()).at("a", t) for t in times]

    for order in itertools.permutations(joined_left_rejoined()):
        assert [holders_of(list(order)).at("a", t) for t in times] == expected


def test_a_version_told_twice_is_kept_once() -> None:
    holders = Holders()

    assert holders.add(Membership("a", 1, "c", JOIN)) is True
    assert holders.add(Membership("a", 1, "c", JOIN)) is False
    assert holders.versions("a") == [Membership("a", 1, "c", JOIN)]


def test_a_coalition_holds_its_own_accounts() -> None:
    holders = holders_of([Membership("a", 1, "c", JOIN)])

    assert holders.is_coalition("c")
    assert not holders.is_coalition("a")
    assert holders.at("c", JOIN - SECOND) == "c"
    assert holders.at("c", JOIN) == "c"


def test_a_shop_created_in_a_coalition_is_a_member_at_every_event_time() -> None:
    holders = holders_of([Membership("a", 1, "c", EVENT_TIME_START)])

    assert holders.at("a", EVENT_TIME_START) == "c"
    assert holders.at("a", datetime(2001, 1, 1, tzinfo=UTC)) == "c"


def test_an_unknown_shop_is_its_own_holder() -> None:
    holders = holders_of(joined_left_rejoined())

    assert holders.at("n", JOIN) == "n"
    assert Holders().at("a", JOIN) == "a"
    assert not holders.member_now("n", JOIN)


def test_members_are_the_shops_in_the_coalition_at_that_time() -> None:
    holders = holders_of([*joined_left_rejoined(), Membership("b", 1, "c", EVENT_TIME_START)])

    assert holders.members("c", JOIN - SECOND) == ["b"]
    assert holders.members("c", JOIN) == ["a", "b"]
    assert holders.members("c", LEAVE) == ["b"]
    assert holders.member_now("a", JOIN)
    assert not holders.member_now("a", LEAVE)


def test_two_versions_starting_together_apply_the_later_one() -> None:
    holders = holders_of([Membership("a", 2, None, JOIN), Membership("a", 1, "c", JOIN)])

    assert holders.at("a", JOIN) == "a"


def test_shop_scoped_ids_keep_the_default_shops_and_prefix_the_others() -> None:
    assert shop_scoped("default", "o-1") == "o-1"
    assert shop_scoped("a", "o-1") == "shop:1:a:o-1"
    assert shop_scoped("a:1", "o") != shop_scoped("a", "1:o")


def test_coalitions_at_names_each_member_shop_with_its_coalition_then() -> None:
    holders = holders_of([*joined_left_rejoined(), Membership("b", 1, "d", JOIN)])

    assert holders.coalitions_at(JOIN - SECOND) == {}
    assert holders.coalitions_at(JOIN) == {"a": "c", "b": "d"}
    assert holders.coalitions_at(LEAVE) == {"b": "d"}
    assert holders.coalitions_at(REJOIN) == {"a": "c", "b": "d"}
