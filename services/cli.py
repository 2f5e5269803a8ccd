"""The `loyalty` command: run a service, migrate, publish an event, simulate a shop."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import sys
from collections.abc import Iterator, Sequence

import asyncpg
import uvicorn
from pydantic import ValidationError
from pydantic_settings import SettingsError

from services.analytics.commands import add_analytics_commands
from services.console.commands import add_console_commands
from services.dlq.commands import add_dlq_commands
from services.earn.commands import add_earn_commands
from services.notify.commands import add_notify_commands
from services.registry import SERVICES
from services.shops.coalition_commands import add_coalition_commands
from services.shops.commands import add_shops_commands
from services.tiering.commands import add_tiering_commands
from shared.kafka_connection import KafkaAccessRefused, KafkaConnection, check_access
from shared.logs import configure_logging
from shared.settings import CommonSettings


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KafkaAccessRefused as exc:
        # A refused login or certificate: one line, not a traceback of the client's internals.
        print(f"loyalty: {exc}", file=sys.stderr)
        return 1
    except SettingsError as exc:
        print(f"loyalty: invalid settings: {exc}", file=sys.stderr)
        return 2
    except _CONNECTION_REFUSALS as exc:
        # Unreachable, refused, a certificate not trusted: one line naming what failed (never
        # the URL, which may hold a password), not a traceback.
        print(f"loyalty: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except ValidationError as exc:
        if not exc.title.endswith("Settings"):
            raise
        # One line per problem; the errors never repeat the values (they hold secrets).
        for error in exc.errors(include_url=False, include_input=False):
            setting = "".join(f"LOYALTY_{str(part).upper()}: " for part in error["loc"][:1])
            problem = error["msg"].removeprefix("Value error, ")
            print(f"loyalty: invalid settings: {setting}{problem}", file=sys.stderr)
        return 2


# A connection not made (OSError: refused, unreachable, TLS), and what PostgreSQL answers when
# it will not take one: login, database, slots, state.
_CONNECTION_REFUSALS: tuple[type[Exception], ...] = (
    OSError,
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.InvalidCatalogNameError,
    asyncpg.TooManyConnectionsError,
    asyncpg.CannotConnectNowError,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loyalty", description=__doc__)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run", help="run one service (earn, tiering, notify, analytics, shops or console)"
    )
    run.add_argument("service", choices=sorted(SERVICES))
    run.add_argument("--port", type=int, help="HTTP port (default: the service's own)")
    run.set_defaults(func=_run)

    migrate = sub.add_parser("migrate", help="apply database migrations and create topics")
    _services_argument(migrate)
    migrate.add_argument(
        "--expand-only",
        action="store_true",
        help="hold back the contract parts, while replicas of the previous release still run"
        " (also LOYALTY_MIGRATIONS=expand)",
    )
    migrate.set_defaults(func=_migrate)

    publish = sub.add_parser("publish", help="publish one event to its topic")
    publish.add_argument("type", help="event type, e.g. order.paid")
    publish.add_argument("--customer", default="c-1001", help="customer id (the subject)")
    publish.add_argument("--data", help="the event's data as JSON (default: a sample)")
    publish.add_argument("--id", help="event id (default: a new UUID)")
    publish.set_defaults(func=_publish)

    simulate = sub.add_parser("simulate", help="a small shop: sign-ups and orders over time")
    simulate.add_argument("--customers", type=int, default=50)
    simulate.add_argument("--rate", type=float, default=5.0, help="events per second")
    simulate.add_argument("--duration", type=float, default=0, help="seconds; 0 runs until Ctrl-C")
    simulate.add_argument("--seed", type=int, default=None)
    simulate.set_defaults(func=_simulate)

    lag = sub.add_parser(
        "lag", help="where each service's consumer groups stand: which records are applied"
    )
    _services_argument(lag)
    lag.add_argument("--topic", action="append", help="only this topic (repeatable)")
    lag.add_argument("--json", action="store_true", help="one JSON object per line")
    lag.set_defaults(func=_lag)

    asyncapi = sub.add_parser("asyncapi", help="write each service's AsyncAPI document")
    asyncapi.add_argument("--check", action="store_true", help="only report drift; exit 1 if any")
    asyncapi.set_defaults(func=_asyncapi)

    demo = sub.add_parser("demo", help="every service and the simulated shop, until Ctrl-C")
    demo.add_argument("--rate", type=float, default=5.0, help="simulated events per second")
    demo.add_argument(
        "--base-port", type=int, help="HTTP ports base, base+1... (default: 8001-8006)"
    )
    demo.set_defaults(func=_demo)

    prune = sub.add_parser(
        "prune", help="delete inbox rows, idempotency keys and staff mail older than a window"
    )
    _services_argument(prune)
    prune.add_argument(
        "--older-than-days",
        type=int,
        default=30,
        help="keep this many days (default 30; at least 8, beyond Kafka's 7-day retention)",
    )
    prune.add_argument("--dry-run", action="store_true", help="only count what would go")
    prune.set_defaults(func=_prune)

    add_analytics_commands(sub)
    add_console_commands(sub)
    add_dlq_commands(sub)
    add_earn_commands(sub)
    add_notify_commands(sub)
    add_shops_commands(sub)
    add_coalition_commands(sub)
    add_tiering_commands(sub)
    return parser


def _run(args: argparse.Namespace) -> int:
    entry = SERVICES[args.service]
    settings = entry.settings()
    configure_logging(fmt=settings.log_format, level=settings.log_level, service=args.service)
    app, _runtime = entry.bootstrap(settings)
    # Everything loaded so far (modules, models, schemas) lives as long as the process: kept out
    # of the collector's full passes, which would otherwise stall consumption for ~80 ms each.
    gc.collect()
    gc.freeze()
    # A batch of 2,000 events allocates over 100,000 objects that live until it commits: with
    # the default threshold (700) the young generations are collected hundreds of times per
    # batch and the survivors promoted, for nothing. bench.earn, one replica: 42.0-44.6 µs of
    # CPU per event with this threshold, 48.4-49.2 with (20,000, 20, 20), the same peak RSS.
    gc.set_threshold(100_000, 50, 50)
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=args.port or settings.http_port or 8000,
        lifespan="on",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.graceful_timeout_s),
    )
    server = _Server(config)
    server.run()
    return 0 if server.started else 1


class _Server(uvicorn.Server):
    """uvicorn, minus re-raising SIGTERM after the graceful shutdown it triggered.

    uvicorn ends a signalled process by raising the signal again, so a clean stop would exit
    as "killed by SIGTERM"; a supervisor should see 0 when in-flight work was drained.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            yield
            self._captured_signals.clear()


def _services_argument(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "services", nargs="*", metavar="SERVICE", help=f"{', '.join(SERVICES)} (default: all)"
    )


def _unknown_services(names: Sequence[str]) -> bool:
    """Says so when a name is not a service's."""
    unknown = sorted(set(names) - set(SERVICES))
    if unknown:
        print(
            f"unknown service(s): {', '.join(unknown)}; choose from {', '.join(sorted(SERVICES))}"
        )
    return bool(unknown)


def _migrate(args: argparse.Namespace) -> int:
    if _unknown_services(args.services):
        return 2
    import asyncpg

    from shared.db import create_pool
    from shared.runtime import prepare_database
    from shared.topics import ALL_TOPICS, ensure_topics, topics_with_dlq

    settings = CommonSettings()
    configure_logging(fmt=settings.log_format, level=settings.log_level, service="migrate")
    contract = settings.migrations == "all" and not args.expand_only

    async def migrate() -> None:
        try:
            pool = await create_pool(
                settings.database_url.get_secret_value(), min_size=1, max_size=2
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            # Refused, unreachable, or a TLS certificate not trusted: nothing was done, and
            # the reason fits on one line (the URL, with its password, is not repeated).
            raise _CannotConnect(f"{type(exc).__name__}: {exc}") from None
        try:
            for name in args.services or sorted(SERVICES):
                entry = SERVICES[name]
                applied = await prepare_database(
                    pool, entry.definition(entry.settings()), contract=contract
                )
                print(f"{name}: {len(applied)} migration(s) applied", *applied, sep="\n  ")
        finally:
            await pool.close()
        kafka = KafkaConnection.from_settings(settings)
        await check_access(kafka)
        created = await ensure_topics(
            kafka,
            topics_with_dlq(ALL_TOPICS),
            partitions=settings.topic_partitions,
        )
        print(f"topics: {len(created)} created")

    try:
        asyncio.run(migrate())
    except _CannotConnect as exc:
        print(f"migrate: cannot connect to the database: {exc}", file=sys.stderr)
        return 1
    return 0


class _CannotConnect(Exception):
    """The database could not be reached or refused the connection."""


def _prune(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime, timedelta

    from tqdm import tqdm

    from shared.db import create_pool
    from shared.pruning import check_window, count_older, prunables, prune

    if _unknown_services(args.services):
        return 2
    window = timedelta(days=args.older_than_days)
    try:
        check_window(window)
    except ValueError as exc:
        print(f"refused: {exc}")
        return 2
    settings = CommonSettings()
    schemas = [
        SERVICES[name].definition(SERVICES[name].settings()).schema
        for name in args.services or sorted(SERVICES)
    ]
    before = datetime.now(UTC) - window

    async def run() -> None:
        pool = await create_pool(settings.database_url.get_secret_value(), min_size=1, max_size=2)
        try:
            for target in prunables(schemas):
                older = await count_older(pool, target, before)
                if args.dry_run:
                    print(f"{target.name}: {older} row(s) older than {before:%Y-%m-%d %H:%M} UTC")
                    continue
                with tqdm(total=older, unit="row", desc=target.name, disable=None) as bar:
                    deleted = await prune(pool, target, before, progress=bar.update)
                print(f"{target.name}: {deleted} row(s) deleted")
        finally:
            await pool.close()

    asyncio.run(run())
    return 0


def _publish(args: argparse.Namespace) -> int:
    from services.samples import publish_one

    settings = CommonSettings()
    data = json.loads(args.data) if args.data else None
    sent = asyncio.run(
        publish_one(
            KafkaConnection.from_settings(settings), args.type, args.customer, data, args.id
        )
    )
    print(f"published to {sent.topic} partition {sent.partition} offset {sent.offset}:")
    print(sent.body)
    return 0


def _lag(args: argparse.Namespace) -> int:
    from services.lag import positions, table
    from shared.runtime import consumer_group

    if _unknown_services(args.services):
        return 2
    settings = CommonSettings()
    groups = {
        (name, topic): consumer_group(settings, name, topic)
        for name in args.services or sorted(SERVICES)
        for topic in SERVICES[name].definition(SERVICES[name].settings()).handlers
        if not args.topic or topic in args.topic
    }
    found = asyncio.run(positions(KafkaConnection.from_settings(settings), groups))
    if args.json:
        print(*(json.dumps(p.to_json()) for p in found), sep="\n")
    else:
        print(table(found))
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from services.simulate import run_simulation, until_signalled

    settings = CommonSettings()
    configure_logging(fmt=settings.log_format, level=settings.log_level, service="simulate")
    asyncio.run(
        until_signalled(
            run_simulation(
                KafkaConnection.from_settings(settings),
                customers=args.customers,
                rate=args.rate,
                duration=args.duration,
                seed=args.seed,
            )
        )
    )
    return 0


def _asyncapi(args: argparse.Namespace) -> int:
    from services.asyncapi import DEFAULT_DIR, drift, write

    if args.check:
        stale = drift()
        print(*(f"differs from the code: {name}" for name in stale), sep="\n")
        return 1 if stale else 0
    print(*(str(DEFAULT_DIR / name) for name in write()), sep="\n")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from services.demo import run_demo

    return run_demo(rate=args.rate, base_port=args.base_port)


if __name__ == "__main__":
    sys.exit(main())
