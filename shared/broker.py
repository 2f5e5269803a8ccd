"""The Kafka broker factory and the wiring of batch consumers to FastStream subscribers."""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any, Union, cast

from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from shared.consumer import BatchConsumer
from shared.events import TOPICS
from shared.events.catalog import event_model
from shared.kafka_connection import KafkaConnection
from shared.settings import CommonSettings
from shared.undecodable import SetAsideConsumer

# How often a consumer tells its group it is alive, and learns of a rebalance: a replica that
# joins a group with members waits that long for them to rejoin (Kafka's default is 3 s).
HEARTBEAT_INTERVAL_MS = 1000


class _Broker(KafkaBroker):
    """A KafkaBroker that starts its subscribers at once instead of one after another.

    A subscriber's start returns once its consumer group assigned it partitions. A replica
    joining groups that have members already waits for a rebalance in each: one after another,
    its last topic was consumed by the first replica alone for one rebalance per topic.
    """

    async def _connect(self) -> Any:
        # Every subscriber's aiokafka consumer sets aside a partition it cannot decode instead
        # of failing every poll (see shared.undecodable).
        builder = cast("functools.partial[Any]", await super()._connect())
        set_aside = functools.partial(SetAsideConsumer, *builder.args, **builder.keywords)
        self.config.broker_config.builder = set_aside
        return set_aside

    async def start(self) -> None:
        await self.connect()
        # Every start ends before a failure is raised: none is left running behind a stop.
        started = await asyncio.gather(
            *(subscriber.start() for subscriber in self.subscribers), return_exceptions=True
        )
        for outcome in started:
            if isinstance(outcome, BaseException):
                raise outcome
        for publisher in self.publishers:
            await publisher.start()
        self.running = True


def make_broker(settings: CommonSettings, service: str) -> KafkaBroker:
    """A broker whose subscribers get time to finish in-flight batches on shutdown."""
    kafka = KafkaConnection.from_settings(settings)
    return _Broker(
        kafka.bootstrap_servers,
        security=kafka.security(),
        client_id=f"loyalty-{service}",
        graceful_timeout=settings.graceful_timeout_s,
        request_timeout_ms=15_000,
        # One line per message at INFO would drown the service's own logs at thousands per second.
        logger=logging.getLogger("faststream"),
        log_level=logging.DEBUG,
    )


async def _raw(_msg: Any) -> None:
    # The records are parsed by the batch consumer itself, so that a body which is not JSON
    # reaches it as bytes (and the dead-letter queue) instead of failing inside the framework.
    return None


def subscribe_batches(
    broker: KafkaBroker,
    consumer: BatchConsumer,
    *,
    group_id: str,
    max_records: int,
    batch_timeout_ms: int,
) -> None:
    """Feed `consumer` with batches of its topic.

    NACK_ON_ERROR commits the offsets only after the handler returned, so nothing is committed
    unprocessed (FastStream's default for Kafka commits on receipt: at most once). A batch the
    consumer hands back is nacked here: every partition of the batch is sought back to its
    first record. The consumer has logged why, once, as a structured event; raising would have
    FastStream log the traceback again, as plain text, on every attempt.
    """

    @broker.subscriber(
        consumer.topic,
        group_id=group_id,
        batch=True,
        max_records=max_records,
        batch_timeout_ms=batch_timeout_ms,
        auto_offset_reset="earliest",
        heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        decoder=_raw,
        title=f"{consumer.service}:{consumer.topic}",
        description=_accepts(consumer.topic),
    )
    async def consume_batch(message: KafkaMessage) -> None:
        records = message.raw_message
        try:
            await consumer.process(records if isinstance(records, tuple) else (records,))
        except Exception:  # noqa: BLE001 - counted and logged by the consumer; redelivered
            await message.nack()


def _accepts(topic: str) -> str:
    types = ", ".join(sorted(TOPICS.get(topic, {})))
    return (
        f"CloudEvents 1.0 keyed by customer id, in structured or binary mode; types: {types}. "
        f"Bad input goes to {topic}.dlq."
    )


def document_publishers(broker: KafkaBroker, topics: tuple[str, ...]) -> None:
    """Describe the topics a service emits in its AsyncAPI document.

    The events themselves are sent by the outbox relay, never through these publishers: they
    exist so that the document carries each topic's event schemas.
    """
    for topic in topics:
        models = tuple(event_model(t) for t in sorted(TOPICS[topic]))
        broker.publisher(
            topic,
            title=f"{topic}:publish",
            description=f"Published through the outbox; types: {', '.join(sorted(TOPICS[topic]))}.",
            schema=Union[models] if len(models) > 1 else models[0],  # noqa: UP007 - runtime union
        )
