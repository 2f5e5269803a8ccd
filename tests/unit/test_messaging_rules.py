"""Pure parts of the messaging plumbing: dead-letter records, retry timing, migration files,
the relay's partitioning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from aiokafka import ConsumerRecord
from aiokafka.errors import (
    NotCoordinatorForGroupError,
    NotEnoughReplicasError,
    RecordTooLargeError,
    RequestTimedOutError,
    TopicAuthorizationFailedError,
)
from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st
from support import consumer_record, encoded, order_paid

from services.cli import main as cli_main
from shared.consumer import Incoming, Rejection, dead_letter, to_incoming
from shared.db import load_migrations
from shared.errors import Bug
from shared.outbox import key_hash
from shared.pruning import check_window, prunables
from shared.retry import Backoff, is_transient


def record(
    value: bytes, *, headers: tuple[tuple[str, bytes], ...] = ()
) -> ConsumerRecord[bytes, bytes]:
    return consumer_record(value, partition=2, offset=41, headers=headers)


def test_unparseable_record_becomes_a_rejection_keyed_by_its_position_and_bytes() -> None:
    result = to_incoming(record(b"\x00not json"))
    other = to_incoming(record(b"\x00other bytes"))
    assert isinstance(result, Rejection)
    assert isinstance(other, Rejection)
    assert result.error.error_class == "InvalidJson"
    assert result.incoming.inbox_key.startswith("shop.orders/2/41/")
    again = to_incoming(record(b"\x00not json"))
    assert isinstance(again, Rejection)
    assert result.incoming.inbox_key == again.incoming.inbox_key
    assert result.incoming.inbox_key != other.incoming.inbox_key


def test_a_refused_record_is_named_by_its_position_and_its_event() -> None:
    event = order_paid("c-1")
    parsed = to_incoming(record(encoded(event)))
    assert isinstance(parsed, Incoming)
    assert parsed.record_key == f"shop.orders/2/41/{event.id}"


def test_dead_letter_keeps_key_bytes_and_headers_and_says_why() -> None:
    rejected = to_incoming(record(b"{", headers=(("trace", b"abc"),)))
    assert isinstance(rejected, Rejection)
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    message = dead_letter(rejected, service="earn", now=at)

    headers = dict(message.headers)
    assert (message.topic, message.key, message.value) == ("shop.orders.dlq", b"c-1", b"{")
    assert headers["trace"] == b"abc"
    assert headers["x-dlq-error-class"] == b"InvalidJson"
    assert headers["x-dlq-service"] == b"earn"
    assert headers["x-dlq-time"] == b"2026-01-02T03:04:05+00:00"
    assert (headers["x-dlq-partition"], headers["x-dlq-offset"]) == (b"2", b"41")


def test_backoff_grows_and_stays_under_its_cap() -> None:
    backoff = Backoff(base=0.1, cap=1.0)
    delays = [backoff.next_delay() for _ in range(10)]
    assert delays[0] <= 0.1
    assert all(d <= 1.0 for d in delays)
    assert delays[-1] >= 0.5
    backoff.reset()
    assert backoff.next_delay() <= 0.1


def test_connection_errors_are_transient_and_bugs_are_not() -> None:
    assert is_transient(ConnectionRefusedError())
    assert not is_transient(Bug("broken"))
    assert not is_transient(ValueError("bad"))


@pytest.mark.parametrize(
    "refusal",
    [
        asyncpg.ObjectNotInPrerequisiteStateError(
            'database "loyalty" is not currently accepting connections'
        ),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.CrashShutdownError("terminating connection due to crash of another process"),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.TooManyConnectionsError("sorry, too many clients already"),
        ConnectionRefusedError(),
        ConnectionResetError(),
    ],
    ids=repr,
)
def test_a_database_not_accepting_connections_now_is_transient(refusal: Exception) -> None:
    assert is_transient(refusal)


def test_other_states_of_sqlstate_55000_are_not_transient() -> None:
    unset = asyncpg.ObjectNotInPrerequisiteStateError(
        'currval of sequence "s" is not yet defined in this session'
    )
    assert not is_transient(unset)


def test_kafka_errors_that_call_themselves_retriable_are_transient() -> None:
    assert is_transient(RequestTimedOutError())
    assert is_transient(NotCoordinatorForGroupError())
    assert is_transient(NotEnoughReplicasError())
    assert not is_transient(RecordTooLargeError())
    assert not is_transient(TopicAuthorizationFailedError())


def test_migration_files_must_be_numbered_without_gaps(tmp_path: Path) -> None:
    (tmp_path / "0001_first.sql").write_text("SELECT 1;")
    (tmp_path / "0003_third.sql").write_text("SELECT 1;")
    with pytest.raises(Bug, match="without gaps"):
        load_migrations(tmp_path)


def test_migration_files_must_be_named_as_numbered_snake_case(tmp_path: Path) -> None:
    (tmp_path / "1_First.sql").write_text("SELECT 1;")
    with pytest.raises(Bug, match="NNNN_snake_case"):
        load_migrations(tmp_path)


def test_parsed_record_is_keyed_by_its_event_id() -> None:
    event = order_paid("c-1", event_id="evt-1")
    result = to_incoming(record(encoded(event)))
    assert isinstance(result, Incoming)
    assert result.inbox_key == "evt-1"


def test_pruning_refuses_a_window_within_kafkas_retention(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(ValueError, match="applied twice"):
        check_window(timedelta(days=7))
    check_window(timedelta(days=8))

    assert cli_main(["prune", "--older-than-days", "3"]) == 2
    assert cli_main(["prune", "nowhere"]) == 2
    assert "refused: a window of 3 day(s) is shorter than 8 days" in capsys.readouterr().out


def test_pruning_covers_every_inbox_earns_idempotency_keys_and_notifys_staff_mail() -> None:
    names = [p.name for p in prunables(["earn", "notify"])]
    assert names == ["earn.inbox", "notify.inbox", "earn.idempotency_keys", "notify.staff_mail"]


@given(key=st.binary(min_size=0, max_size=300), count=st.integers(min_value=1, max_value=64))
def test_the_relay_places_a_keyed_message_where_the_producer_would(key: bytes, count: int) -> None:
    """The relay picks partitions itself (to build one record batch per partition); a
    customer's events must land where Kafka's default partitioner puts that key, as
    consumers keyed by customer rely on."""
    partitions = list(range(count))
    expected = DefaultPartitioner()(key, partitions, partitions)
    assert partitions[key_hash(key) % count] == expected
    assert partitions[key_hash(key) % count] == expected  # and once remembered
