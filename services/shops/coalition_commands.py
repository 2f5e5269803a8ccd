"""`loyalty coalitions`: create coalitions and move shops in and out of them, from the command
line, as the admin API's platform routes do."""

from __future__ import annotations

import argparse
from typing import Any

from services.shops import coalitions, handlers
from services.shops.commands import as_json, run_command
from services.shops.handlers import Change
from services.shops.records import Membership
from shared.commands import instant
from shared.db import Connection


def add_coalition_commands(sub: Any) -> None:
    """Register `coalitions` on the `loyalty` parser's subparsers."""
    parser = sub.add_parser("coalitions", help="coalitions of shops sharing accounts")
    actions = parser.add_subparsers(required=True, metavar="ACTION")
    create = actions.add_parser("create", help="a coalition from a starter template")
    create.add_argument("coalition_id", metavar="COALITION")
    create.add_argument("--template", required=True, choices=handlers.templates())
    create.add_argument("--name", help="the coalition's name (default: the template's)")
    create.set_defaults(func=_create)
    listing = actions.add_parser("list", help="every coalition")
    listing.set_defaults(func=_list)
    members = actions.add_parser("members", help="the shops in a coalition, and since when")
    members.add_argument("coalition_id", metavar="COALITION")
    members.set_defaults(func=_members)
    join = actions.add_parser("join", help="a shop joins a coalition (a new membership version)")
    join.add_argument("shop_id", metavar="SHOP")
    join.add_argument("coalition_id", metavar="COALITION")
    _when_and_why(join)
    join.set_defaults(func=_join)
    leave = actions.add_parser("leave", help="a shop leaves its coalition")
    leave.add_argument("shop_id", metavar="SHOP")
    _when_and_why(leave)
    leave.set_defaults(func=_leave, coalition_id=None)
    versions = actions.add_parser("versions", help="a shop's membership versions")
    versions.add_argument("shop_id", metavar="SHOP")
    versions.set_defaults(func=_versions)


def _when_and_why(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--effective-from", type=instant, help="ISO 8601 (default: the lead)")
    parser.add_argument("--reason", default="", help="why, for the audit trail")


def _create(args: argparse.Namespace) -> int:
    async def work(conn: Connection, change: Change) -> str:
        made = await coalitions.create_coalition(
            conn, change, coalition_id=args.coalition_id, template=args.template, name=args.name
        )
        return as_json(made)

    return run_command(work, announces=True)


def _list(args: argparse.Namespace) -> int:
    async def work(conn: Connection, change: Change) -> str:
        return as_json(await coalitions.list_coalitions(conn))

    return run_command(work)


def _members(args: argparse.Namespace) -> int:
    async def work(conn: Connection, change: Change) -> str:
        return as_json(await coalitions.members(conn, args.coalition_id))

    return run_command(work)


def _join(args: argparse.Namespace) -> int:
    return _set(args)


def _leave(args: argparse.Namespace) -> int:
    return _set(args)


def _set(args: argparse.Namespace) -> int:
    async def work(conn: Connection, change: Change) -> str:
        made = await coalitions.set_coalition(
            conn,
            change,
            shop_id=args.shop_id,
            coalition_id=args.coalition_id,
            effective_from=args.effective_from,
            reason=args.reason,
        )
        return _said(made)

    return run_command(work, announces=True)


def _said(m: Membership) -> str:
    what = f"joins {m.coalition_id}" if m.coalition_id else "stands alone"
    return f"shop {m.shop_id} {what} from {m.effective_from.isoformat()} (version {m.version})"


def _versions(args: argparse.Namespace) -> int:
    async def work(conn: Connection, change: Change) -> str:
        found = await coalitions.memberships_of(conn, args.shop_id)
        return "\n".join(
            f"{m.version}\t{m.effective_from.isoformat()}\t{m.coalition_id or '-'}\t"
            f"{m.published_by}\t{m.reason}"
            for m in found
        )

    return run_command(work)
