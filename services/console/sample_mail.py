"""Use case of the messages page: a template sent with sample data to the asker's own address.

Takes its dependencies as keyword arguments, as handlers.py does.
"""

from __future__ import annotations

import secrets
from datetime import datetime

import asyncpg

from services.console.adapters import accounts, invitations
from services.console.adapters.accounts import User
from shared.events.console import MessageTestRequested


async def request_test_send(
    pool: asyncpg.Pool, *, shop_id: str, user: User, template: str, locale: str, now: datetime
) -> str:
    """One transaction: message.test_requested enqueued on loyalty.console for notify to
    send, and the line in the actions log (ids only). The request's id."""
    request_id = "tst_" + secrets.token_hex(10)
    data = MessageTestRequested(
        shop_id=shop_id,
        request_id=request_id,
        template=template,
        locale="en" if locale == "en" else "vi",
        to_email=user.email,
        requested_by=user.user_id,
    )
    async with pool.acquire() as conn, conn.transaction():
        await invitations.announce(conn, "message.test_requested", data, shop_id=shop_id, at=now)
        await accounts.record_action(
            conn,
            at=now,
            user_id=user.user_id,
            shop_id=shop_id,
            action="message_test_requested",
            target=template,
        )
    return request_id
