"""Which failures are transient, and how long to wait before trying again."""

from __future__ import annotations

import random

import asyncpg
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    NotLeaderForPartitionError,
)

from shared.errors import TransientFailure

_TRANSIENT: tuple[type[BaseException], ...] = (
    TransientFailure,
    OSError,  # connection refused or reset, name resolution
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    # A connection broken in the middle of an operation (the server went away) reports this;
    # the pool replaces the connection, so trying again is right.
    asyncpg.InternalClientError,
    # The server is not taking connections now: starting up or shutting down (57P01-57P03),
    # out of connection slots (53300).
    asyncpg.CannotConnectNowError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.AdminShutdownError,
    KafkaConnectionError,
    KafkaTimeoutError,
    NotLeaderForPartitionError,
)


def is_transient(exc: BaseException) -> bool:
    """True when trying again later may succeed: the database or broker is briefly unavailable.

    Every state in which the database server does not accept connections now counts: refused
    or reset connections, a server starting or shutting down, no connection slot left, a
    database closed to connections.

    Kafka's own errors say so themselves: a request that timed out, a leader or coordinator
    moving, too few in-sync replicas for the moment.
    """
    if isinstance(exc, KafkaError) and exc.retriable:
        return True
    return isinstance(exc, _TRANSIENT) or _database_closed_to_connections(exc)


def _database_closed_to_connections(exc: BaseException) -> bool:
    """SQLSTATE 55000 on connecting: the database is closed to connections for now
    (ALTER DATABASE ... ALLOW_CONNECTIONS false, as during maintenance).

    The same state reports other things (a sequence read before it was set, say) that no
    retry mends: only the refusal of a connection is transient.
    """
    return type(exc) is asyncpg.ObjectNotInPrerequisiteStateError and (
        "not currently accepting connections" in str(exc)
    )


class Backoff:
    """Exponential backoff with full jitter, capped."""

    def __init__(self, *, base: float = 0.1, cap: float = 10.0) -> None:
        self._base = base
        self._cap = cap
        self._attempt = 0

    def reset(self) -> None:
        self._attempt = 0

    def next_delay(self) -> float:
        ceiling = min(self._cap, self._base * 2**self._attempt)
        self._attempt += 1
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not security
