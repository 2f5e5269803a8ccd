"""Isolating the records that make a batch fail, and logging a failure that repeats."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
import pytest
import structlog

from shared.errors import Bug, RejectedMessage
from shared.failure_log import FailureLog
from shared.isolation import describe, is_data_error, isolate


class FakeStore:
    """Applies parts of a batch as transactions would: all of a part or nothing."""

    def __init__(self, failing: dict[int, Exception]) -> None:
        self.failing = failing
        self.applied: list[int] = []
        self.attempts = 0

    async def apply(self, part: Sequence[int]) -> list[int]:
        self.attempts += 1
        for item in part:
            if item in self.failing:
                raise self.failing[item]
        self.applied.extend(part)
        return list(part)


async def test_records_that_fail_alone_are_found_and_the_rest_applied_once_in_order() -> None:
    overflow = asyncpg.NumericValueOutOfRangeError("bigint out of range")
    store = FakeStore({7: overflow, 40: KeyError("tier")})
    items = list(range(50))

    found = await isolate(store.apply, items, overflow, proves=bool)

    assert store.applied == [n for n in items if n not in (7, 40)]
    assert [item for item, _ in found.failures] == [7, 40]
    assert found.failures[0][1] is overflow
    assert found.complete
    assert found.proven
    assert found.attempts <= 4 * (50).bit_length()


async def test_a_fault_every_record_meets_stops_the_bisection_early() -> None:
    broken = Bug("no such table")
    store = FakeStore(dict.fromkeys(range(500), broken))

    found = await isolate(store.apply, list(range(500)), broken, proves=bool)

    assert not found.complete
    assert not found.proven
    assert store.applied == []
    assert store.attempts <= (500).bit_length() + 5


async def test_a_transient_failure_while_isolating_is_raised() -> None:
    store = FakeStore({3: ConnectionResetError()})
    with pytest.raises(ConnectionResetError):
        await isolate(store.apply, list(range(8)), Bug("first"), proves=bool)


async def test_a_batch_of_one_record_is_its_own_failure_without_another_attempt() -> None:
    store = FakeStore({})
    error = asyncpg.UntranslatableCharacterError("\\u0000 cannot be converted to text.")

    found = await isolate(store.apply, [1], error, proves=bool)

    assert found.failures == [(1, error)]
    assert store.attempts == 0


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (asyncpg.UntranslatableCharacterError("\\u0000 cannot be converted to text."), True),
        (asyncpg.NumericValueOutOfRangeError("bigint out of range"), True),
        (asyncpg.UniqueViolationError("duplicate key value"), True),
        (asyncpg.CheckViolationError("violates check constraint"), True),
        (RejectedMessage("no rate", error_class="NoEarnRate"), True),
        (asyncpg.UndefinedTableError("relation does not exist"), False),
        (Bug("broken"), False),
        (KeyError("tier"), False),
    ],
    ids=repr,
)
def test_only_values_postgresql_refuses_are_data_errors(error: Exception, expected: bool) -> None:
    assert is_data_error(error) is expected


def test_a_database_refusal_is_dead_lettered_with_its_class_and_sqlstate() -> None:
    refusal = describe(asyncpg.UntranslatableCharacterError("\\u0000 cannot be converted to text."))
    assert refusal.error_class == "UntranslatableCharacterError"
    assert refusal.reason == "SQLSTATE 22P05: \\u0000 cannot be converted to text."


def test_the_same_failure_is_logged_once_per_window_and_then_says_how_often_it_came() -> None:
    now = [0.0]
    failures = FailureLog(window_s=60, now=lambda: now[0])
    logger = structlog.get_logger()

    with structlog.testing.capture_logs() as logs:
        for at in (0, 5, 10, 59):
            now[0] = at
            failures.log(logger, "error", "batch_given_back", Bug("broken"), reason="bug")
        failures.log(logger, "error", "batch_given_back", Bug("other"), reason="bug")
        now[0] = 61
        failures.log(logger, "error", "batch_given_back", Bug("broken"), reason="bug")

    assert [(e["error"], e.get("suppressed")) for e in logs] == [
        ("broken", None),
        ("other", None),
        ("broken", 3),
    ]
    assert logs[0]["exc_info"] is not None  # the traceback once, in the event itself
    assert logs[2]["exc_info"] is None
