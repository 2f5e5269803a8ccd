"""Use cases of coalitions: groups of shops that share one account per customer.

A coalition is a shop of kind 'coalition', made from a template as a shop is: it has its own
programmes (which its members' accounts run), keys and audit trail. A shop's membership is a
list of immutable versions, each starting a lead after it is published and after the one it
follows, announced as shop.coalition_changed; every service maps a shop to the holder of its
accounts by event time from them (shared.holders).
"""

from __future__ import annotations

from datetime import datetime

from services.shops.adapters import store
from services.shops.documents import check_reason
from services.shops.handlers import (
    Change,
    check_lead,
    coalition_to_join,
    create_shop,
    find_shop,
    write_membership,
)
from services.shops.records import Member, Membership, Shop
from services.shops.refusals import InvalidDocument, NotFound
from shared.db import Connection


async def create_coalition(
    conn: Connection, change: Change, *, coalition_id: str, template: str, name: str | None = None
) -> Shop:
    """A coalition with the template's currency, zone and locale, and version 1 of each of
    its programmes, which its members' accounts will run."""
    return await create_shop(
        conn, change, shop_id=coalition_id, template=template, name=name, kind="coalition"
    )


async def list_coalitions(conn: Connection) -> list[Shop]:
    return [s for s in await store.shops(conn) if s.kind == "coalition"]


async def find_coalition(conn: Connection, coalition_id: str) -> Shop:
    found = await store.shop(conn, coalition_id)
    if found is None or found.kind != "coalition":
        raise NotFound(f"no coalition {coalition_id!r}")
    return found


async def members(conn: Connection, coalition_id: str) -> list[Member]:
    """The shops in the coalition by their latest membership version, and since when (a
    version starting later is listed already)."""
    await find_coalition(conn, coalition_id)
    return await store.members(conn, coalition_id)


async def memberships_of(conn: Connection, shop_id: str) -> list[Membership]:
    await find_shop(conn, shop_id)
    return await store.memberships(conn, shop_id)


async def set_coalition(
    conn: Connection,
    change: Change,
    *,
    shop_id: str,
    coalition_id: str | None,
    effective_from: datetime | None = None,
    reason: str = "",
) -> Membership:
    """A new membership version: the shop joins `coalition_id` (or leaves its coalition, for
    None) from effective_from, at the earliest (and by default) the change's lead after now.

    Refused, with a 422 naming the field: a coalition joining; a target that is no
    coalition, or whose latest earn version has no rate for the shop's currency (points move
    1:1); a change that changes nothing; leaving without the shop's own earn and tiers
    versions, which its events will run from then on.
    """
    check_reason(reason)
    starts = effective_from or change.earliest
    check_lead(change, starts)
    async with conn.transaction():
        shop = await store.shop(conn, shop_id, lock=True)
        if shop is None:
            raise NotFound(f"no shop {shop_id!r}")
        if shop.kind != "shop":
            raise InvalidDocument(
                f"{shop_id!r} is a coalition", [("shop_id", "a coalition joins no coalition")]
            )
        if coalition_id == shop.coalition_id:
            said = "in" if coalition_id else "outside any"
            raise InvalidDocument(
                "the membership would not change",
                [("coalition_id", f"the shop is {said} coalition {coalition_id or ''}".strip())],
            )
        if coalition_id is not None:
            await coalition_to_join(conn, coalition_id, currency=shop.currency)
        else:
            await _check_runs_alone(conn, shop_id)
        return await write_membership(
            conn,
            change,
            shop_id=shop_id,
            coalition_id=coalition_id,
            starts=starts,
            reason=reason,
        )


async def _check_runs_alone(conn: Connection, shop_id: str) -> None:
    for kind in ("earn", "tiers"):
        if await store.next_version(conn, shop_id, kind) == 1:
            raise InvalidDocument(
                f"the shop {shop_id!r} has no {kind} programme of its own",
                [
                    (
                        "coalition_id",
                        f"publish the shop's own {kind} programme before it leaves: its "
                        "events run it from then on",
                    )
                ],
            )
