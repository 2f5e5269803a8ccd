"""Finding the records of a failed batch that fail by themselves, by bisection.

A batch that fails for a reason that is not transient is tried again in halves, each in a
transaction of its own, down to single records: the halves that succeed are committed (once:
each transaction claims its records in the inbox with its effects), and what is left are the
records that fail alone, with their errors.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import asyncpg

from shared.errors import RejectedMessage
from shared.retry import is_transient

T = TypeVar("T")
R = TypeVar("R")

# SQLSTATE classes in which PostgreSQL refuses the values it was given: data exceptions (22:
# a string holding U+0000, a number out of range) and integrity constraints (23). A record that
# meets one alone meets it on every attempt.
DATA_ERROR_CLASSES = ("22", "23")


def is_data_error(exc: BaseException) -> bool:
    """True when the failure comes from the values of the input itself."""
    if isinstance(exc, RejectedMessage):
        return True
    state = getattr(exc, "sqlstate", None) if isinstance(exc, asyncpg.PostgresError) else None
    return isinstance(state, str) and state[:2] in DATA_ERROR_CLASSES


def describe(exc: BaseException) -> RejectedMessage:
    """The refusal that a record failing with `exc` is dead-lettered with."""
    if isinstance(exc, RejectedMessage):
        return exc
    state = getattr(exc, "sqlstate", None) if isinstance(exc, asyncpg.PostgresError) else None
    reason = f"SQLSTATE {state}: {exc}" if state else str(exc) or repr(exc)
    return RejectedMessage(reason, error_class=type(exc).__name__)


@dataclass
class Isolation(Generic[T, R]):
    """What the bisection of a batch came to."""

    results: list[R] = field(default_factory=list)  # of the parts that succeeded
    failures: list[tuple[T, Exception]] = field(default_factory=list)  # records failing alone
    attempts: int = 0
    # Whether some part that succeeded proved the handler works for other records.
    proven: bool = False
    # False when the bisection stopped early: every attempt failed, as a fault that is not
    # in the data makes them (a missing table, a bug on every path).
    complete: bool = True


class _Unproven(Exception):
    """Too many attempts failed before any succeeded."""


async def isolate(
    apply: Callable[[Sequence[T]], Awaitable[R]],
    items: Sequence[T],
    error: Exception,
    *,
    proves: Callable[[R], bool],
) -> Isolation[T, R]:
    """Bisect `items`, which failed together with `error`, applying what succeeds.

    Transient failures are raised (the caller gives the batch back). A fault that fails
    every record is told from bad records by the attempts it takes: a bisection down to one
    bad record fails about log2(n) times before a part succeeds, so when more fail before any
    succeeds, the bisection stops (`complete` is False) instead of trying all 2n parts.
    """
    outcome: Isolation[T, R] = Isolation()
    if len(items) == 1:
        outcome.failures.append((items[0], error))
        return outcome
    budget = len(items).bit_length() + 4
    failed_first = 0

    async def attempt(part: Sequence[T]) -> None:
        nonlocal failed_first
        outcome.attempts += 1
        try:
            result = await apply(part)
        except Exception as exc:
            if is_transient(exc):
                raise
            if not outcome.proven:
                failed_first += 1
                if failed_first > budget:
                    raise _Unproven from exc
            if len(part) == 1:
                outcome.failures.append((part[0], exc))
            else:
                await halves(part)
            return
        outcome.results.append(result)
        outcome.proven = outcome.proven or proves(result)

    async def halves(part: Sequence[T]) -> None:
        middle = len(part) // 2
        await attempt(part[:middle])
        await attempt(part[middle:])

    try:
        await halves(items)
    except _Unproven:
        outcome.complete = False
    return outcome
