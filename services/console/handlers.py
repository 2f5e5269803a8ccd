"""Use cases that change the console's own state: create an account, sign in, sign out,
choose a language; invite staff, accept an invitation, change a role, remove a member.

Each takes its dependencies as keyword arguments (a pool, the password hasher, a policy, the
time) so tests run them against PostgreSQL without the HTTP layer.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from services.console.adapters import accounts, invitations, sessions
from services.console.adapters.accounts import Membership, User
from services.console.adapters.passwords import MIN_PASSWORD_LENGTH, Passwords
from services.console.domain.roles import Role
from services.console.formats import LANGUAGES
from shared.db import Connection
from shared.events.console import StaffInvited


class AccountRefused(ValueError):
    """An account could not be made as asked (email taken, password too short...)."""


@dataclass(frozen=True)
class SignInPolicy:
    failures_per_email: int
    failures_per_address: int
    window: timedelta
    session_idle: timedelta
    session_max: timedelta


@dataclass(frozen=True)
class SignedIn:
    user: User
    memberships: list[Membership]
    # The cookie's value: handed to the browser once, only its sha256 is kept.
    cookie: str
    csrf_token: str


@dataclass(frozen=True)
class WrongCredentials:
    """Unknown email, wrong password or a disabled account: the page says the same for all."""


@dataclass(frozen=True)
class Throttled:
    retry_after_s: int


def session_key(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


def new_user_id() -> str:
    return "u_" + base64.b32encode(secrets.token_bytes(15)).decode().lower().rstrip("=")[:22]


def email_bucket(email: str) -> str:
    # Hashed: the throttle table holds no email addresses.
    return "email:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()


def address_bucket(address: str) -> str:
    return f"addr:{address}"


async def create_user(
    pool: asyncpg.Pool,
    *,
    passwords: Passwords,
    email: str,
    name: str,
    password: str,
    now: datetime,
    locale: str = "vi",
    platform_operator: bool = False,
    shops: dict[str, Role] | None = None,
    added_by: str | None = None,
) -> User:
    """A new account, with a role in each of the given shops, in one transaction."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountRefused(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
    if locale not in LANGUAGES:
        raise AccountRefused(f"the language is one of {', '.join(LANGUAGES)}")
    hashed = await passwords.hash(password)
    user_id = new_user_id()
    async with pool.acquire() as conn, conn.transaction():
        made = await accounts.insert_user(
            conn,
            user_id=user_id,
            email=email.strip(),
            name=name.strip(),
            password_hash=hashed,
            locale=locale,
            platform_operator=platform_operator,
            now=now,
        )
        if not made:
            raise AccountRefused("an account with that email exists already")
        for shop_id, role in (shops or {}).items():
            await accounts.add_membership(
                conn, user_id=user_id, shop_id=shop_id, role=role, added_by=added_by, now=now
            )
        await accounts.record_action(
            conn, at=now, user_id=added_by or user_id, action="user_created", target=user_id
        )
    return User(user_id, email.strip(), name.strip(), locale, platform_operator, disabled=False)


async def set_up_account(
    pool: asyncpg.Pool,
    *,
    passwords: Passwords,
    email: str,
    name: str,
    password: str,
    now: datetime,
    platform_operator: bool = False,
    shops: dict[str, Role] | None = None,
) -> User:
    """An account with this password and these roles, made or, when the email has one
    already, given the new password (its sessions end) and the roles besides its others."""
    async with pool.acquire() as conn:
        found = await accounts.user_by_email(conn, email.strip())
    if found is None:
        return await create_user(
            pool,
            passwords=passwords,
            email=email,
            name=name,
            password=password,
            now=now,
            platform_operator=platform_operator,
            shops=shops,
        )
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountRefused(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
    user, hashed = found[0], await passwords.hash(password)
    async with pool.acquire() as conn, conn.transaction():
        await accounts.set_password_hash(conn, user.user_id, hashed)
        await sessions.delete_sessions_of(conn, user.user_id)
        for shop_id, role in (shops or {}).items():
            await accounts.add_membership(
                conn, user_id=user.user_id, shop_id=shop_id, role=role, added_by=None, now=now
            )
        await accounts.record_action(
            conn, at=now, user_id=user.user_id, action="password_reset", target=user.user_id
        )
    return user


async def sign_in(
    pool: asyncpg.Pool,
    *,
    passwords: Passwords,
    policy: SignInPolicy,
    email: str,
    password: str,
    address: str,
    now: datetime,
) -> SignedIn | WrongCredentials | Throttled:
    """Check the throttle before any hash is computed; count a failure in both buckets; on
    success forget the email's failures, rehash when the costs changed, open a session."""
    buckets = {
        email_bucket(email): policy.failures_per_email,
        address_bucket(address): policy.failures_per_address,
    }
    async with pool.acquire() as conn:
        for bucket, limit in buckets.items():
            if await sessions.failures(conn, bucket, now=now, window=policy.window) >= limit:
                ends = await sessions.window_ends(conn, bucket, window=policy.window)
                wait = (ends - now).total_seconds() if ends is not None else 1
                return Throttled(retry_after_s=max(1, int(wait) + 1))
        found = await accounts.user_by_email(conn, email.strip())
    user, stored = found if found is not None else (None, None)
    verified = await passwords.verify(stored, password)
    async with pool.acquire() as conn, conn.transaction():
        if user is None or not verified.ok or user.disabled:
            for bucket in buckets:
                await sessions.count_failure(conn, bucket, now=now, window=policy.window)
            return WrongCredentials()
        await sessions.reset(conn, email_bucket(email))
        if verified.rehashed is not None:
            await accounts.set_password_hash(conn, user.user_id, verified.rehashed)
        cookie, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        await sessions.insert_session(
            conn,
            session_sha256=session_key(cookie),
            user_id=user.user_id,
            csrf_token=csrf,
            now=now,
            expires_at=now + policy.session_max,
        )
        await accounts.record_action(conn, at=now, user_id=user.user_id, action="signed_in")
        shops = await accounts.memberships(conn, user.user_id)
    return SignedIn(user, shops, cookie, csrf)


async def sign_out(pool: asyncpg.Pool, *, cookie: str) -> None:
    async with pool.acquire() as conn:
        await sessions.delete_session(conn, session_key(cookie))


async def choose_language(pool: asyncpg.Pool, *, user_id: str, language: str) -> None:
    if language not in LANGUAGES:
        raise AccountRefused(f"the language is one of {', '.join(LANGUAGES)}")
    async with pool.acquire() as conn:
        await accounts.set_locale(conn, user_id, language)


# --- staff of a shop: invitations, roles, removal ---------------------------------------


class StaffRefused(ValueError):
    """A change to a shop's staff that would break a rule (the last owner, say)."""


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
        if len(password) < MIN_PASSWORD_LENGTH:
            raise AccountRefused(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
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
        raise StaffRefused("no such member of the shop")
    return found


async def _keep_an_owner(conn: Connection, shop_id: str) -> None:
    if len(await accounts.owners(conn, shop_id, lock=True)) <= 1:
        raise StaffRefused("a shop keeps at least one owner")


async def _audit(conn: Connection, change: StaffChange, action: str, target: str) -> None:
    await accounts.record_action(
        conn,
        at=change.now,
        user_id=change.by.user_id,
        shop_id=change.shop_id,
        action=action,
        target=target,
    )
