"""SQL of the console's staff accounts: users and their memberships of shops."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from services.console.domain.roles import Role
from shared.db import Connection

SCHEMA: Final = "console"


@dataclass(frozen=True)
class User:
    user_id: str
    email: str
    name: str
    locale: str
    platform_operator: bool
    disabled: bool


@dataclass(frozen=True)
class Membership:
    shop_id: str
    role: Role


_USER_COLUMNS: Final = "user_id, email, name, locale, platform_operator, disabled_at IS NOT NULL"


def _user(row: tuple[object, ...]) -> User:
    user_id, email, name, locale, operator, disabled = row
    return User(str(user_id), str(email), str(name), str(locale), bool(operator), bool(disabled))


async def insert_user(
    conn: Connection,
    *,
    user_id: str,
    email: str,
    name: str,
    password_hash: str,
    locale: str,
    platform_operator: bool,
    now: datetime,
) -> bool:
    """False when an account of that email (in any case) exists already."""
    status = await conn.execute(
        f"""INSERT INTO {SCHEMA}.users
                (user_id, email, name, password_hash, locale, platform_operator, created_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING""",
        user_id,
        email,
        name,
        password_hash,
        locale,
        platform_operator,
        now,
    )
    return bool(status == "INSERT 0 1")


async def user_by_email(conn: Connection, email: str) -> tuple[User, str] | None:
    """The account and its password hash."""
    row = await conn.fetchrow(
        f"SELECT {_USER_COLUMNS}, password_hash FROM {SCHEMA}.users WHERE lower(email) = lower($1)",
        email,
    )
    return None if row is None else (_user(tuple(row)[:6]), str(row["password_hash"]))


async def user_by_id(conn: Connection, user_id: str) -> User | None:
    row = await conn.fetchrow(
        f"SELECT {_USER_COLUMNS} FROM {SCHEMA}.users WHERE user_id = $1", user_id
    )
    return None if row is None else _user(tuple(row))


async def set_password_hash(conn: Connection, user_id: str, password_hash: str) -> None:
    await conn.execute(
        f"UPDATE {SCHEMA}.users SET password_hash = $2 WHERE user_id = $1", user_id, password_hash
    )


async def set_locale(conn: Connection, user_id: str, locale: str) -> None:
    await conn.execute(f"UPDATE {SCHEMA}.users SET locale = $2 WHERE user_id = $1", user_id, locale)


async def add_membership(
    conn: Connection, *, user_id: str, shop_id: str, role: Role, added_by: str | None, now: datetime
) -> None:
    """The user's role in the shop, replacing any role they had there."""
    await conn.execute(
        f"""INSERT INTO {SCHEMA}.memberships (user_id, shop_id, role, added_by, added_at)
            VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (user_id, shop_id) DO UPDATE SET role = EXCLUDED.role""",
        user_id,
        shop_id,
        role.value,
        added_by,
        now,
    )


async def memberships(conn: Connection, user_id: str) -> list[Membership]:
    rows = await conn.fetch(
        f"SELECT shop_id, role FROM {SCHEMA}.memberships WHERE user_id = $1 ORDER BY shop_id",
        user_id,
    )
    return [Membership(r["shop_id"], Role(r["role"])) for r in rows]


async def membership(conn: Connection, user_id: str, shop_id: str) -> Membership | None:
    role = await conn.fetchval(
        f"SELECT role FROM {SCHEMA}.memberships WHERE user_id = $1 AND shop_id = $2",
        user_id,
        shop_id,
    )
    return None if role is None else Membership(shop_id, Role(role))


async def record_action(
    conn: Connection,
    *,
    at: datetime,
    user_id: str,
    action: str,
    shop_id: str | None = None,
    target: str | None = None,
) -> None:
    await conn.execute(
        f"""INSERT INTO {SCHEMA}.actions (at, user_id, shop_id, action, target)
            VALUES ($1, $2, $3, $4, $5)""",
        at,
        user_id,
        shop_id,
        action,
        target,
    )


@dataclass(frozen=True)
class Member:
    user_id: str
    email: str
    name: str
    role: Role


async def members(conn: Connection, shop_id: str) -> list[Member]:
    rows = await conn.fetch(
        f"""SELECT u.user_id, u.email, u.name, m.role
            FROM {SCHEMA}.memberships m JOIN {SCHEMA}.users u USING (user_id)
            WHERE m.shop_id = $1 AND u.disabled_at IS NULL ORDER BY lower(u.email)""",
        shop_id,
    )
    return [Member(r["user_id"], r["email"], r["name"], Role(r["role"])) for r in rows]


async def owners(conn: Connection, shop_id: str, *, lock: bool = False) -> list[str]:
    # FOR UPDATE: two owners demoting each other at once cannot leave the shop with none.
    rows = await conn.fetch(
        f"""SELECT user_id FROM {SCHEMA}.memberships WHERE shop_id = $1 AND role = 'owner'
            ORDER BY user_id{" FOR UPDATE" if lock else ""}""",
        shop_id,
    )
    return [r["user_id"] for r in rows]


async def remove_membership(conn: Connection, *, user_id: str, shop_id: str) -> bool:
    status = await conn.execute(
        f"DELETE FROM {SCHEMA}.memberships WHERE user_id = $1 AND shop_id = $2",
        user_id,
        shop_id,
    )
    return bool(status == "DELETE 1")
