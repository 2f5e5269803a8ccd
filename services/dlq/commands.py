"""`loyalty dlq list|inspect|replay`: the dead-letter tools of the command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from services.dlq.records import DeadLetter, DeadLetterReader, dlq_topics, parse_position
from shared.kafka_connection import KafkaConnection
from shared.logs import configure_logging
from shared.settings import CommonSettings


def add_dlq_commands(sub: Any) -> None:
    """Register `dlq` and its subcommands on the `loyalty` parser's subparsers."""
    dlq = sub.add_parser("dlq", help="list, inspect and replay dead letters")
    commands = dlq.add_subparsers(required=True, metavar="ACTION")

    listing = commands.add_parser("list", help="the newest dead letters, oldest first")
    listing.add_argument("--topic", help="a consumed topic, e.g. shop.orders (default: all)")
    listing.add_argument("--limit", type=int, default=50, help="newest N per partition")
    listing.set_defaults(func=_list)

    inspect = commands.add_parser("inspect", help="one dead letter's headers and body")
    inspect.add_argument("topic", help="the topic, e.g. shop.orders or shop.orders.dlq")
    inspect.add_argument("partition", type=int)
    inspect.add_argument("offset", type=int)
    inspect.set_defaults(func=_inspect)

    replay = commands.add_parser("replay", help="publish dead letters to their topic again")
    replay.add_argument("--topic", help="a consumed topic, e.g. shop.orders (default: all)")
    replay.add_argument("--error-class", help="only this error class, e.g. NoEarnRate")
    replay.add_argument("--service", help="only those dead-lettered by this service")
    replay.add_argument("--key", help="only this message key (a customer id)")
    replay.add_argument(
        "--shop", help="only this shop's (the body's data.shop_id; none named: default)"
    )
    replay.add_argument(
        "--position",
        action="append",
        type=_position,
        help="only this one, topic/partition/offset as `list` shows it (repeatable)",
    )
    replay.add_argument("--dry-run", action="store_true", help="say what would be replayed")
    replay.set_defaults(func=_replay)


def _list(args: argparse.Namespace) -> int:
    settings = CommonSettings()
    topics = dlq_topics(args.topic)

    async def read() -> tuple[list[DeadLetter], set[tuple[str, int, int, int]] | None]:
        async with DeadLetterReader(KafkaConnection.from_settings(settings)) as reader:
            found = await reader.read(topics, newest=args.limit)
        return found, await _replayed_or_none(settings, topics)

    found, replayed = asyncio.run(read())
    found.sort(key=lambda d: d.timestamp_ms)
    print(f"{'position':<34} {'dead-lettered at':<32} {'service':<8} {'error':<16} replayed")
    for d in found:
        mark = "?" if replayed is None else ("yes" if d.identity in replayed else "no")
        print(
            f"{d.position:<34} {d.dead_lettered_at:<32} {d.service:<8} {d.error_class:<16} {mark}"
        )
        print(f"    {d.error_message[:160]}")
    print(f"{len(found)} dead letter(s)")
    if replayed is None:
        print("(the database does not answer: whether they were replayed is unknown)")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    settings = CommonSettings()
    topic = dlq_topics(args.topic)[0]

    async def read() -> DeadLetter | None:
        async with DeadLetterReader(KafkaConnection.from_settings(settings)) as reader:
            return await reader.one(topic, args.partition, args.offset)

    dead = asyncio.run(read())
    if dead is None:
        print(f"no record at {topic}/{args.partition}/{args.offset}", file=sys.stderr)
        return 1
    print(f"position:  {dead.position}")
    print(f"key:       {_text(dead.key or b'')}")
    print("headers:")
    for name, value in dead.headers:
        print(f"  {name}: {_text(value)}")
    print("body:")
    try:
        print(json.dumps(json.loads(dead.value), indent=2, ensure_ascii=False))
    except ValueError:
        print(_text(dead.value))
    return 0


def _replay(args: argparse.Namespace) -> int:
    from tqdm import tqdm  # noqa: PLC0415 - only this command draws a progress bar

    from services.dlq.replay import ReplayBusy, Selection, replay  # noqa: PLC0415

    settings = CommonSettings()
    configure_logging(fmt=settings.log_format, level=settings.log_level, service="dlq")
    positions = None if args.position is None else frozenset(args.position)
    topics = dlq_topics(args.topic)
    if args.topic is None and positions is not None:
        topics = sorted({topic for topic, _, _ in positions})
    selection = Selection(
        topics,
        args.error_class,
        args.service,
        args.key,
        shop=args.shop,
        positions=positions,
    )
    # disable=None: drawn on a terminal, silent in pipes and logs.
    bar = tqdm(unit="msg", desc="replaying", disable=None, file=sys.stderr)

    def advance(n: int) -> None:
        bar.update(n)

    try:
        report = asyncio.run(
            replay(
                kafka=KafkaConnection.from_settings(settings),
                database_url=settings.database_url.get_secret_value(),
                selection=selection,
                dry_run=args.dry_run,
                progress=advance,
                on_total=lambda n: setattr(bar, "total", n),
            )
        )
    except ReplayBusy as busy:
        print(busy, file=sys.stderr)
        return 1
    finally:
        bar.close()
    if args.dry_run:
        print(f"would replay {len(report.selected)} dead letter(s):")
        for target, n in sorted(report.by_target(report.selected).items()):
            print(f"  {target}: {n}")
        for d in report.selected[:20]:
            print(f"  {d.position} -> {d.original_topic}")
    else:
        print(f"replayed {len(report.replayed)} dead letter(s):")
        for target, n in sorted(report.by_target(report.replayed).items()):
            print(f"  {target}: {n}")
    print(f"skipped {report.already_replayed} replayed before")
    return 0


async def _replayed_or_none(
    settings: CommonSettings, topics: list[str]
) -> set[tuple[str, int, int, int]] | None:
    from services.dlq.replay import SCHEMA, replayed_positions  # noqa: PLC0415
    from shared.db import create_pool  # noqa: PLC0415

    try:
        pool = await create_pool(settings.database_url.get_secret_value(), min_size=1, max_size=1)
    except (OSError, TimeoutError):
        return None
    try:
        async with pool.acquire() as conn:
            if await conn.fetchval("SELECT to_regclass($1)", f"{SCHEMA}.replays") is None:
                return set()  # nothing was ever replayed
            return await replayed_positions(conn, topics)
    finally:
        await pool.close()


def _position(text: str) -> tuple[str, int, int]:
    try:
        return parse_position(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not topic/partition/offset: {text!r}") from None


def _text(raw: bytes) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return "0x" + raw.hex()
