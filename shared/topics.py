"""Topic names, and creating them (with their dead-letter topics) before anything consumes."""

from __future__ import annotations

import asyncio

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.structs import OffsetAndMetadata

from shared.errors import Bug, TransientFailure
from shared.kafka_connection import KafkaConnection, kafka_connection

log = structlog.get_logger(__name__)

INPUT_TOPICS = ("shop.customers", "shop.orders", "shop.carts", "shop.engagement")
OUTPUT_TOPICS = (
    "loyalty.points",
    "loyalty.tiers",
    "loyalty.memberships",
    "loyalty.notifications",
    "loyalty.shops",
    "loyalty.console",
)
ALL_TOPICS = INPUT_TOPICS + OUTPUT_TOPICS

# Settings a topic is created with, beyond the broker's defaults. loyalty.shops is the history
# of every programme version and key: a service deployed later reads it from the start, so it
# is never deleted by age (it stays small: a few events per shop and change).
# loyalty.console carries staff emails and invitation secrets: kept a week, long enough for
# notify to be down a while.
TOPIC_CONFIGS: dict[str, dict[str, str]] = {
    "loyalty.shops": {"retention.ms": "-1"},
    "loyalty.console": {"retention.ms": str(7 * 24 * 3600 * 1000)},
}


# What a dead letter adds to the record it holds: the x-dlq-* headers (the error message is
# cut at 1000 bytes) and the batch framing, with room to spare.
DLQ_HEADROOM_BYTES = 64 * 1024
MAX_MESSAGE_BYTES = "max.message.bytes"
_DYNAMIC_TOPIC_CONFIG = 1  # DescribeConfigs' config source of a topic's own setting


def dlq(topic: str) -> str:
    return f"{topic}.dlq"


async def ensure_topics(
    kafka: KafkaConnection | str, names: list[str], *, partitions: int
) -> list[str]:
    """Create the topics that do not exist yet; returns those created. Safe to run concurrently."""
    admin = AIOKafkaAdminClient(
        **kafka_connection(kafka).client_options(), request_timeout_ms=15_000
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in dict.fromkeys(names) if n not in existing]
        if missing:
            result = await admin.create_topics(
                [
                    NewTopic(
                        n,
                        num_partitions=partitions,
                        replication_factor=1,
                        topic_configs=TOPIC_CONFIGS.get(n, {}),
                    )
                    for n in missing
                ]
            )
            # TOPIC_ALREADY_EXISTS (36) means another replica was quicker: not an error.
            failed = [(t, c) for t, c, *_ in result.topic_errors if c not in (0, 36)]
            if failed:
                raise TransientFailure(f"could not create topics: {failed}")
            log.info("topics_created", topics=missing, partitions=partitions)
        await _fit_dead_letter_topics(admin, names)
        return missing
    finally:
        await admin.close()


async def _fit_dead_letter_topics(admin: AIOKafkaAdminClient, names: list[str]) -> None:
    """Let each dead-letter topic take any record its source topic takes, plus the x-dlq-*
    headers: raise its max.message.bytes where it is lower (its other settings kept).

    A dead letter of a record near the source's limit is otherwise refused for ever, and the
    outbox relay with it.
    """
    pairs = [(n[: -len(".dlq")], n) for n in dict.fromkeys(names) if n.endswith(".dlq")]
    if not pairs:
        return
    configs = await _settled_topic_configs(admin, [t for pair in pairs for t in pair])
    for source, letters in pairs:
        needed = int(configs[source][MAX_MESSAGE_BYTES][0]) + DLQ_HEADROOM_BYTES
        current = configs[letters]
        if int(current[MAX_MESSAGE_BYTES][0]) >= needed:
            continue
        # AlterConfigs replaces a topic's own settings: send the ones it has, changed.
        kept = {k: v for k, (v, own) in current.items() if own and k != MAX_MESSAGE_BYTES}
        resource = ConfigResource(
            ConfigResourceType.TOPIC, letters, configs={**kept, MAX_MESSAGE_BYTES: str(needed)}
        )
        responses = await admin.alter_configs([resource])
        errors = [r[:2] for resp in responses for r in resp.resources if r[0] != 0]
        if errors:
            log.error(
                "dead_letter_topic_too_small",
                topic=letters,
                max_message_bytes=int(current[MAX_MESSAGE_BYTES][0]),
                needed=needed,
                errors=errors,
            )
            continue
        log.info("dead_letter_topic_limit_raised", topic=letters, max_message_bytes=needed)


async def _settled_topic_configs(
    admin: AIOKafkaAdminClient, topics: list[str]
) -> dict[str, dict[str, tuple[str, bool]]]:
    """The topics' settings, asked again for a few seconds while a topic created a moment ago
    is still unknown to the broker that answers (it learns of new topics from the controller
    shortly after their creation)."""
    for delay in _SETTLING_DELAYS_S:
        try:
            return await _topic_configs(admin, topics)
        except _TopicNotYetKnown:
            await asyncio.sleep(delay)
    return await _topic_configs(admin, topics)


class _TopicNotYetKnown(TransientFailure):
    """DescribeConfigs answered UNKNOWN_TOPIC_OR_PARTITION for a topic."""


_SETTLING_DELAYS_S = (0.1, 0.2, 0.4, 0.8, 1.6, 3.2)
_UNKNOWN_TOPIC_OR_PARTITION = 3


async def _topic_configs(
    admin: AIOKafkaAdminClient, topics: list[str]
) -> dict[str, dict[str, tuple[str, bool]]]:
    """Each topic's settings: name -> (value, whether set on the topic itself)."""
    resources = [ConfigResource(ConfigResourceType.TOPIC, t) for t in dict.fromkeys(topics)]
    configs: dict[str, dict[str, tuple[str, bool]]] = {}
    for response in await admin.describe_configs(resources):
        for code, message, _, topic, entries in response.resources:
            if code == _UNKNOWN_TOPIC_OR_PARTITION:
                raise _TopicNotYetKnown(f"could not read the settings of {topic}: {message}")
            if code != 0:
                raise TransientFailure(f"could not read the settings of {topic}: {message}")
            configs[topic] = {e[0]: (e[1], e[3] == _DYNAMIC_TOPIC_CONFIG) for e in entries}
    return configs


def topics_with_dlq(names: tuple[str, ...]) -> list[str]:
    return [t for name in names for t in (name, dlq(name))]


async def start_group_at_end(
    kafka: KafkaConnection | str, group_id: str, topics: list[str]
) -> None:
    """Commit a consumer group's offsets at the current ends of `topics`.

    A group that starts there skips the history: tests use it so that their services see only
    what they publish, the benchmark so that latency is measured without a backlog. On a fresh
    broker the topics may not exist yet (services create them as they start): the project's
    topics are created first, so that there is an end to start at.
    """
    options = kafka_connection(kafka).client_options()
    await ensure_topics(kafka, topics_with_dlq(ALL_TOPICS), partitions=4)
    admin = AIOKafkaAdminClient(**options)
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    partitions = [
        TopicPartition(topic["topic"], p["partition"])
        for topic in described
        for p in topic["partitions"]
    ]
    if {tp.topic for tp in partitions} != set(topics):
        raise Bug(f"not every topic of {topics} has partitions: {described}")
    consumer = AIOKafkaConsumer(**options, group_id=group_id, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        await consumer.commit({tp: OffsetAndMetadata(offset, "") for tp, offset in ends.items()})
    finally:
        await consumer.stop()
