"""`loyalty shops`, `loyalty programmes` and `loyalty keys`: the admin API's use cases from the
command line, against PostgreSQL directly (LOYALTY_DATABASE_URL), their events relayed to
Kafka through the outbox before the command ends."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from services.shops import handlers
from services.shops.adapters.announcements import TOPIC
from services.shops.bootstrap import definition
from services.shops.documents import KINDS
from services.shops.handlers import Change
from services.shops.records import Version
from services.shops.refusals import InvalidDocument, Refusal
from services.shops.settings import ShopsSettings
from shared.clock import SystemClock
from shared.commands import instant
from shared.db import Connection, create_pool
from shared.events import OrderPaid
from shared.kafka_connection import KafkaConnection, check_access
from shared.logs import configure_logging
from shared.outbox import OutboxRelay
from shared.runtime import prepare_database
from shared.topics import ensure_topics, topics_with_dlq

T = TypeVar("T")
Work = Callable[[Connection, Change], Awaitable[str]]


def add_shops_commands(sub: Any) -> None:
    """Register `shops`, `programmes` and `keys` on the `loyalty` parser's subparsers."""
    _shops(sub.add_parser("shops", help="create and list shops"))
    _programmes(sub.add_parser("programmes", help="validate, publish and roll back programmes"))
    _keys(sub.add_parser("keys", help="create, list, rotate and revoke API keys"))


def _shops(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(required=True, metavar="ACTION")
    create = actions.add_parser("create", help="a shop from a starter template")
    create.add_argument("shop_id", metavar="SHOP")
    create.add_argument("--template", required=True, choices=handlers.templates())
    create.add_argument("--name", help="the shop's name (default: the template's)")
    create.add_argument("--coalition", help="a coalition the shop is a member of from the start")
    create.set_defaults(func=_create_shop)
    listing = actions.add_parser("list", help="every shop")
    listing.set_defaults(func=_list_shops)
    audit = actions.add_parser("audit", help="who changed what, and when, newest first")
    _owner(audit)
    audit.add_argument("--limit", type=int, default=100, help="entries (default 100)")
    audit.set_defaults(func=_audit)


def _programmes(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(required=True, metavar="ACTION")
    validate = actions.add_parser("validate", help="check a programme file without saving it")
    validate.add_argument("kind", choices=KINDS)
    validate.add_argument("file", type=Path)
    validate.set_defaults(func=_validate)
    publish = actions.add_parser("publish", help="publish a programme file as a new version")
    _shop_and_kind(publish)
    publish.add_argument("file", type=Path)
    publish.add_argument("--effective-from", type=instant, help="ISO 8601 (default: now)")
    publish.add_argument("--reason", default="", help="why, for the audit trail")
    publish.set_defaults(func=_publish)
    versions = actions.add_parser("versions", help="list the versions of a programme")
    _shop_and_kind(versions)
    versions.set_defaults(func=_versions)
    show = actions.add_parser("show", help="print one version's TOML")
    _shop_and_kind(show)
    show.add_argument("version", type=int)
    show.set_defaults(func=_show)
    rollback = actions.add_parser("rollback", help="publish an old version again, from now")
    _shop_and_kind(rollback)
    rollback.add_argument("version", type=int)
    rollback.add_argument("--reason", default="", help="why, for the audit trail")
    rollback.set_defaults(func=_rollback)
    preview = actions.add_parser("preview", help="what an order would earn under a draft")
    preview.add_argument("file", type=Path, help="the draft earn programme (TOML)")
    preview.add_argument("--order", type=Path, required=True, help="an order.paid's data (JSON)")
    preview.add_argument("--paid-at", type=instant, help="ISO 8601 (default: now)")
    preview.add_argument("--multiplier", type=Decimal, default=Decimal(1), help="a tier's")
    preview.set_defaults(func=_preview)


def _shop_and_kind(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shop_id", metavar="SHOP")
    parser.add_argument("kind", choices=KINDS)


def _keys(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(required=True, metavar="ACTION")
    create = actions.add_parser("create", help="a new key; its secret is printed once")
    _owner(create)
    create.add_argument(
        "--scope",
        dest="scopes",
        action="append",
        choices=("read", "redeem", "admin"),
        help="repeat for several (default: read); a platform key has the scope platform",
    )
    create.set_defaults(func=_create_key)
    listing = actions.add_parser("list", help="prefixes, scopes, when made and revoked")
    _owner(listing)
    listing.set_defaults(func=_list_keys)
    for name, func, what in (
        ("rotate", _rotate_key, "a new key with the same scopes; the old one revoked"),
        ("revoke", _revoke_key, "the key opens nothing from now on"),
    ):
        action = actions.add_parser(name, help=what)
        _owner(action)
        action.add_argument("key_id", metavar="KEY_ID")
        action.set_defaults(func=func)


def _owner(parser: argparse.ArgumentParser) -> None:
    owner = parser.add_mutually_exclusive_group(required=True)
    owner.add_argument("--shop", dest="shop_id", help="a shop")
    owner.add_argument("--platform", action="store_true", help="the platform operator's keys")


def as_json(found: BaseModel | list[Any]) -> str:
    if isinstance(found, list):
        return json.dumps([f.model_dump(mode="json") for f in found], indent=2)
    return found.model_dump_json(indent=2)


def _create_shop(args: argparse.Namespace) -> int:
    async def work(conn: Connection, change: Change) -> str:
        made = await handlers.create_shop(
            conn,
            change,
            shop_id=args.shop_id,
            template=args.template,
            name=args.name,
            coalition_id=args.coalition,
        )
        return as_json(made)

    return run_command(work, announces=True)


def _list_shops(args: argparse.Namespace) -> int:
    async def work(conn: Connection, change: Change) -> str:
        return as_json(await handlers.list_shops(conn))

    return run_command(work)


def _audit(args: argparse.Namespace) -> int:
    async def work(conn: Connection, change: Change) -> str:
        return as_json(await handlers.audit_trail(conn, _shop_of(args), limit=args.limit))

    return run_command(work)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidDocument(f"{path}: cannot be read", [(str(path), str(exc.strerror))]) from None


def _validate(args: argparse.Namespace) -> int:
    try:
        handlers.validate_draft(args.kind, _read(args.file))
    except Refusal as exc:
        return _refused(exc)
    print(f"{args.file}: a valid {args.kind} programme")
    return 0


def _publish(args: argparse.Namespace) -> int:
    settings = ShopsSettings()

    async def work(conn: Connection, change: Change) -> str:
        version = await handlers.publish_version(
            conn,
            change,
            shop_id=args.shop_id,
            kind=args.kind,
            text=_read(args.file),
            effective_from=args.effective_from,
            reason=args.reason,
        )
        return _published(version) + f", in force from {version.effective_from.isoformat()}"

    return run_command(work, announces=True, settings=settings)


def _published(version: Version) -> str:
    return f"published {version.kind} version {version.version} of shop {version.shop_id}"


def _versions(args: argparse.Namespace) -> int:
    async def work(conn: Connection, change: Change) -> str:
        found = await handlers.list_versions(conn, args.shop_id, args.kind)
        return "\n".join(
            f"{v.version}\t{v.effective_from.isoformat()}\t{v.published_by}\t{v.reason}"
            for v in found
        )

    return run_command(work)


def _show(args: argparse.Namespace) -> int:
    async def work(conn: Connection, change: Change) -> str:
        found = await handlers.show_version(conn, args.shop_id, args.kind, args.version)
        return found.toml

    return run_command(work)


def _rollback(args: argparse.Namespace) -> int:
    async def work(conn: Connection, change: Change) -> str:
        version = await handlers.roll_back(
            conn, change, shop_id=args.shop_id, kind=args.kind, to=args.version, reason=args.reason
        )
        return _published(version) + f": the document of version {args.version}"

    return run_command(work, announces=True)


def _preview(args: argparse.Namespace) -> int:
    try:
        order = OrderPaid.model_validate_json(_read(args.order))
        found = handlers.preview(
            _read(args.file),
            order,
            paid_at=args.paid_at or SystemClock().now(),
            multiplier=args.multiplier,
        )
    except Refusal as exc:
        return _refused(exc)
    except ValidationError as exc:
        for error in exc.errors(include_url=False, include_input=False):
            at = ".".join(str(p) for p in error["loc"])
            print(f"loyalty programmes preview: --order: {at}: {error['msg']}", file=sys.stderr)
        return 2
    print(json.dumps({"points": found.points, **_fields(found)}, indent=2, default=str))
    return 0


def _fields(found: handlers.Preview) -> dict[str, Any]:
    return {name: getattr(found, name) for name in found.__slots__}


def _scopes(args: argparse.Namespace) -> list[Any]:
    return ["platform"] if args.platform else sorted(set(args.scopes or ["read"]))


def _create_key(args: argparse.Namespace) -> int:
    async def work(conn: Connection, change: Change) -> str:
        made = await handlers.create_key(conn, change, shop_id=_shop_of(args), scopes=_scopes(args))
        return f"{as_json(made)}\nthe secret is shown this once: keep it now"

    return run_command(work, announces=True)


def _shop_of(args: argparse.Namespace) -> str | None:
    return None if args.platform else str(args.shop_id)


def _list_keys(args: argparse.Namespace) -> int:
    async def work(conn: Connection, change: Change) -> str:
        return as_json(await handlers.list_keys(conn, _shop_of(args)))

    return run_command(work)


def _rotate_key(args: argparse.Namespace) -> int:
    async def work(conn: Connection, change: Change) -> str:
        made = await handlers.rotate_key(conn, change, shop_id=_shop_of(args), key_id=args.key_id)
        return f"{as_json(made)}\nthe secret is shown this once: keep it now"

    return run_command(work, announces=True)


def _revoke_key(args: argparse.Namespace) -> int:
    async def work(conn: Connection, change: Change) -> str:
        key = await handlers.revoke_key(conn, change, shop_id=_shop_of(args), key_id=args.key_id)
        return as_json(key)

    return run_command(work, announces=True)


def _refused(exc: Refusal) -> int:
    """A refusal on stderr, each problem on a line of its own naming the setting."""
    if isinstance(exc, InvalidDocument):
        print(exc.reason.splitlines()[0], file=sys.stderr)
        for at, what in exc.problems:
            print(f"  {at}: {what}", file=sys.stderr)
        return 2
    print(f"loyalty: {exc.reason}", file=sys.stderr)
    return 1


def run_command(
    work: Work, *, announces: bool = False, settings: ShopsSettings | None = None
) -> int:
    """Migrate, do the work in the shops schema as "cli:<os user>", then (for a change) relay
    the events it enqueued to Kafka before returning; refusals are told on stderr."""
    settings = settings or ShopsSettings()
    configure_logging(fmt=settings.log_format, level=settings.log_level, service="shops")
    now = SystemClock().now()
    change = Change(actor=f"cli:{getpass.getuser()}", now=now, lead=settings.effective_lead)
    try:
        said = asyncio.run(in_shops(settings, work, change, announces=announces))
    except Refusal as exc:
        return _refused(exc)
    print(said)
    return 0


async def in_shops(
    settings: ShopsSettings,
    work: Callable[[Connection, Change], Awaitable[T]],
    change: Change,
    *,
    announces: bool = False,
) -> T:
    """Do the work in the shops schema (migrated first) as `change.actor`; for a change, relay
    the events it enqueued to loyalty.shops before returning."""
    pool = await create_pool(settings.database_url.get_secret_value(), min_size=1, max_size=2)
    try:
        kafka = KafkaConnection.from_settings(settings)
        if announces:
            await check_access(kafka)
            topics = topics_with_dlq((TOPIC,))
            await ensure_topics(kafka, topics, partitions=settings.topic_partitions)
        service = definition(settings)
        await prepare_database(pool, service)
        async with pool.acquire() as conn:
            said = await work(conn, change)
        if announces:
            relay = OutboxRelay(pool=pool, schema=service.schema, kafka=kafka, service="shops")
            await relay.start()
            await relay.stop()  # stops after draining what the work enqueued
        return said
    finally:
        await pool.close()
