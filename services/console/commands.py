"""`loyalty console create-user` and `widget-secret`: accounts and widget secrets, from a shell."""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
from typing import Any

from services.console import handlers, widget
from services.console.adapters.accounts import User
from services.console.adapters.widget_settings import WidgetSecret
from services.console.bootstrap import definition
from services.console.context import make_passwords
from services.console.domain.origins import OriginRefused
from services.console.domain.roles import Role
from services.console.settings import ConsoleSettings
from shared.clock import SystemClock
from shared.db import create_pool
from shared.logs import configure_logging
from shared.runtime import prepare_database


def add_console_commands(sub: Any) -> None:
    """Register `console` on the `loyalty` parser's subparsers."""
    parser = sub.add_parser("console", help="accounts of the console and widget secrets")
    actions = parser.add_subparsers(required=True, metavar="ACTION")
    create = actions.add_parser(
        "create-user", help="an account with a generated password, printed once"
    )
    create.add_argument("email")
    create.add_argument("--name", help="the person's name (default: the email's local part)")
    whom = create.add_mutually_exclusive_group(required=True)
    whom.add_argument("--operator", action="store_true", help="a platform operator: every shop")
    whom.add_argument("--shop", help="the shop the account is staff of")
    create.add_argument("--role", choices=[r.value for r in Role], default=Role.OWNER.value)
    create.add_argument(
        "--reset-password",
        action="store_true",
        help="when the email has an account: give it a new password (its sessions end)",
    )
    create.set_defaults(func=_create_user)
    secret = actions.add_parser(
        "widget-secret",
        help="a secret with which the shop's backend signs widget tokens, printed once",
    )
    secret.add_argument("--shop", required=True)
    secret.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="a storefront origin (scheme://host[:port]) that may call the widget API; repeatable",
    )
    secret.set_defaults(func=_widget_secret)


def new_password() -> str:
    """20 characters of base64url: about 120 bits, at least 12 characters as required."""
    return secrets.token_urlsafe(15)


async def create_account(
    settings: ConsoleSettings,
    *,
    email: str,
    name: str,
    password: str,
    operator: bool,
    shops: dict[str, Role],
    reset: bool,
) -> User:
    """Make (or with `reset`, set up again) the account in the console's schema, migrated
    first, with the settings' password costs."""
    pool = await create_pool(settings.database_url.get_secret_value(), min_size=1, max_size=2)
    try:
        await prepare_database(pool, definition(settings))
        passwords, now = make_passwords(settings), SystemClock().now()
        make = handlers.set_up_account if reset else handlers.create_user
        return await make(
            pool,
            passwords=passwords,
            email=email,
            name=name,
            password=password,
            now=now,
            platform_operator=operator,
            shops=shops,
        )
    finally:
        await pool.close()


def _create_user(args: argparse.Namespace) -> int:
    settings = ConsoleSettings()
    configure_logging(fmt=settings.log_format, level=settings.log_level, service="console")
    password = new_password()
    shops = {} if args.operator else {args.shop: Role(args.role)}
    try:
        user = asyncio.run(
            create_account(
                settings,
                email=args.email,
                name=args.name or args.email.split("@", 1)[0],
                password=password,
                operator=args.operator,
                shops=shops,
                reset=args.reset_password,
            )
        )
    except handlers.AccountRefused as refused:
        print(f"loyalty: {refused}", file=sys.stderr)
        return 1
    where = "every shop (platform operator)" if args.operator else f"{args.role} of {args.shop}"
    print(f"{user.email} ({user.user_id}), {where}")
    print(f"password (shown once): {password}")
    return 0


async def widget_secret(
    settings: ConsoleSettings, *, shop_id: str, origins: list[str]
) -> tuple[WidgetSecret, frozenset[str]]:
    """A new widget secret for the shop, and its allowed origins with `origins` added."""
    pool = await create_pool(settings.database_url.get_secret_value(), min_size=1, max_size=2)
    try:
        await prepare_database(pool, definition(settings))
        now = SystemClock().now()
        allowed = await widget.allow_origins(
            pool, shop_id=shop_id, origins=origins, by="cli", now=now
        )
        made = await widget.make_widget_secret(pool, shop_id=shop_id, by="cli", now=now)
        return made, allowed
    finally:
        await pool.close()


def _widget_secret(args: argparse.Namespace) -> int:
    settings = ConsoleSettings()
    configure_logging(fmt=settings.log_format, level=settings.log_level, service="console")
    try:
        made, allowed = asyncio.run(
            widget_secret(settings, shop_id=args.shop, origins=args.allow_origin)
        )
    except OriginRefused as refused:
        print(f"loyalty: {refused}", file=sys.stderr)
        return 1
    print(f"shop {made.shop_id}: widget secret {made.kid}")
    print(f"secret (shown once): {made.secret}")
    print(f"allowed origins: {' '.join(sorted(allowed)) or 'none yet'}")
    return 0
