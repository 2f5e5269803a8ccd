"""Use cases of a shop's staff: invite, accept an invitation, revoke it, change a role,
remove a member; each in one transaction with its line in the actions log.

Takes its dependencies as keyword arguments, as handlers.py does.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from services.console.adapters import accounts, invitations, sessions
from services.console.adapters.accounts import Membership, User
from services.console.adapters.passwords import Passwords
from services.console.domain.roles import Role
from services.console.handlers import AccountRefused, check_password, new_user_id, session_key
from shared.db import Connection
from shared.events.console import StaffInvited


class StaffRefused(ValueError):
    """A change to a shop's staff that cannot be made."""


class NotAMember(StaffRefused):
    """The user is not staff of the shop (the page answers 404)."""


class LastOwner(StaffRefused):
    """The change would leave the shop without an owner (409)."""


class InvitationUnusable(ValueError):
    """Unknown, used, revoked or expired: the page says the same for each."""


@dataclass(frozen=True)
class StaffChange:
    shop_id: str
    by: User
    now: datetime


async def invite_staff(
    pool: asyncpg.Pool,
    change: StaffChange,
    *,
    shop_name: str,
    email: str,
    role: Role,
    locale: str,
    public_url: str,
    ttl: timedelta,
) -> str:
    """One transaction: older open invitations of the address to the shop are revoked, the new
    one is kept (only its token's hash), and staff.invited is enqueued for notify to mail. The
    invitation's id."""
    token = secrets.token_urlsafe(32)
    invitation = invitations.Invitation(
        invitation_id="inv_" + secrets.token_hex(10),
        shop_id=change.shop_id,
        email=email.strip(),
        role=role,
        invited_by=change.by.user_id,
        created_at=change.now,
        expires_at=change.now + ttl,
    )
    data = StaffInvited(
        shop_id=change.shop_id,
        shop_name=shop_name,
        invitation_id=invitation.invitation_id,
        email=invitation.email,
        role=role.value,
        locale="en" if locale == "en" else "vi",
        invited_by_name=change.by.name,
        accept_url=f"{public_url.rstrip('/')}/invitations/{token}",
        expires_at=invitation.expires_at,
    )
    async with pool.acquire() as conn, conn.transaction():
        await invitations.revoke_open(conn, shop_id=change.shop_id, email=email, now=change.now)
        await invitations.insert(conn, invitation, token_sha256=session_key(token))
        await invitations.announce(
            conn, "staff.invited", data, shop_id=change.shop_id, at=change.now
        )
        await _audit(conn, change, "staff_invited", invitation.invitation_id)
    return invitation.invitation_id


async def accept_invitation(
    pool: asyncpg.Pool,
    *,
    passwords: Passwords,
    token: str,
    name: str,
    password: str,
    now: datetime,
) -> User:
    """Once: the invited address gets the role in the shop. A new address gets an account
    (name and a new password); an address with an account proves it with its password."""
    key = session_key(token)
    async with pool.acquire() as conn:
        invitation = await invitations.usable(conn, key, now)
        found = None if invitation is None else await accounts.user_by_email(conn, invitation.email)
    if invitation is None:
        raise InvitationUnusable
    if found is not None:
        verified = await passwords.verify(found[1], password)
        if not verified.ok or found[0].disabled:
            raise AccountRefused("the password of the existing account is not right")
        user = found[0]
    else:
        check_password(password)
        if not name.strip():
            raise AccountRefused("a name is needed")
        user = User(new_user_id(), invitation.email, name.strip(), "vi", False, disabled=False)
        hashed = await passwords.hash(password)
    async with pool.acquire() as conn, conn.transaction():
        if await invitations.take(conn, key, now) is None:
            raise InvitationUnusable
        if found is None and not await accounts.insert_user(
            conn,
            user_id=user.user_id,
            email=user.email,
            name=user.name,
            password_hash=hashed,
            locale=user.locale,
            platform_operator=False,
            now=now,
        ):
            raise AccountRefused("an account with that email exists already")
        await accounts.add_membership(
            conn,
            user_id=user.user_id,
            shop_id=invitation.shop_id,
            role=invitation.role,
            added_by=invitation.invited_by,
            now=now,
        )
        change = StaffChange(invitation.shop_id, user, now)
        await _audit(conn, change, "invitation_accepted", invitation.invitation_id)
    return user


async def revoke_invitation(pool: asyncpg.Pool, change: StaffChange, invitation_id: str) -> bool:
    async with pool.acquire() as conn, conn.transaction():
        done = await invitations.revoke(
            conn, shop_id=change.shop_id, invitation_id=invitation_id, now=change.now
        )
        if done:
            await _audit(conn, change, "invitation_revoked", invitation_id)
    return done


async def change_role(pool: asyncpg.Pool, change: StaffChange, user_id: str, role: Role) -> None:
    async with pool.acquire() as conn, conn.transaction():
        current = await _member(conn, change.shop_id, user_id)
        if current.role is Role.OWNER and role is not Role.OWNER:
            await _keep_an_owner(conn, change.shop_id)
        await accounts.add_membership(
            conn, user_id=user_id, shop_id=change.shop_id, role=role, added_by=None, now=change.now
        )
        await _audit(conn, change, f"role_changed_to_{role.value}", user_id)


async def remove_member(pool: asyncpg.Pool, change: StaffChange, user_id: str) -> None:
    """The member loses the shop; their sessions end, so that no open page keeps it."""
    async with pool.acquire() as conn, conn.transaction():
        current = await _member(conn, change.shop_id, user_id)
        if current.role is Role.OWNER:
            await _keep_an_owner(conn, change.shop_id)
        await accounts.remove_membership(conn, user_id=user_id, shop_id=change.shop_id)
        await sessions.delete_sessions_of(conn, user_id)
        await _audit(conn, change, "member_removed", user_id)


async def _member(conn: Connection, shop_id: str, user_id: str) -> Membership:
    found = await accounts.membership(conn, user_id, shop_id)
    if found is None:
        raise NotAMember("no such member of the shop")
    return found


async def _keep_an_owner(conn: Connection, shop_id: str) -> None:
    if len(await accounts.owners(conn, shop_id, lock=True)) <= 1:
        raise LastOwner("a shop keeps at least one owner")


async def _audit(conn: Connection, change: StaffChange, action: str, target: str) -> None:
    await accounts.record_action(
        conn,
        at=change.now,
        user_id=change.by.user_id,
        shop_id=change.shop_id,
        action=action,
        target=target,
    )
