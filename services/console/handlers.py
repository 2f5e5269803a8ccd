"""Use cases of the console's accounts: create or set up an account, sign in, sign out,
change a password, choose a language (a shop's staff: staff.py).

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

from services.console.adapters import accounts, sessions
from services.console.adapters.accounts import Membership, User
from services.console.adapters.passwords import MIN_PASSWORD_LENGTH, Passwords
from services.console.domain.roles import Role
from services.console.formats import LANGUAGES


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


def check_password(password: str) -> None:
    """Refuse a new password shorter than the console allows."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountRefused(f"a password has at least {MIN_PASSWORD_LENGTH} characters")


def check_language(language: str) -> None:
    """Refuse a language the console has no pages in."""
    if language not in LANGUAGES:
        raise AccountRefused(f"the language is one of {', '.join(LANGUAGES)}")


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
    check_password(password)
    check_language(locale)
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
    check_password(password)
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


async def change_password(
    pool: asyncpg.Pool,
    *,
    passwords: Passwords,
    user_id: str,
    current: str,
    new: str,
    now: datetime,
) -> None:
    """The current password proves it is the user; every session of theirs ends, this one too
    (a session stolen before the change is worth nothing after it)."""
    check_password(new)
    async with pool.acquire() as conn:
        user = await accounts.user_by_id(conn, user_id)
        found = None if user is None else await accounts.user_by_email(conn, user.email)
    if found is None or not (await passwords.verify(found[1], current)).ok:
        raise AccountRefused("the current password is not right")
    hashed = await passwords.hash(new)
    async with pool.acquire() as conn, conn.transaction():
        await accounts.set_password_hash(conn, user_id, hashed)
        await sessions.delete_sessions_of(conn, user_id)
        await accounts.record_action(
            conn, at=now, user_id=user_id, action="password_changed", target=user_id
        )


async def choose_language(pool: asyncpg.Pool, *, user_id: str, language: str) -> None:
    check_language(language)
    async with pool.acquire() as conn:
        await accounts.set_locale(conn, user_id, language)
