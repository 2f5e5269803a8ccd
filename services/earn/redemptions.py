"""Redeeming rewards for points and cancelling redemptions, each in the caller's transaction."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import structlog

from services.earn.adapters.redemptions import (
    Redemption,
    insert_redemption,
    lock_account,
    mark_cancelled,
    read_redemption,
)
from services.earn.domain.ledger import NewEntry, WrittenEntry
from services.earn.entries import write_entries
from services.earn.programme import Programme
from services.earn.refusals import Conflict, InvalidField, NotFound
from services.earn.rewards import check_funds, price, redemption_id, voucher_code
from shared.db import Connection

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class RedeemReward:
    """The customer spends points on a reward of the shop's catalogue."""

    shop_id: str
    customer_id: str
    reward: str
    currency: str | None = None
    steps: int | None = None
    points: int | None = None


@dataclass(frozen=True, slots=True)
class Redeemed:
    redemption: Redemption
    entry: WrittenEntry


async def redeem(
    conn: Connection, command: RedeemReward, *, programme: Programme, now: datetime
) -> Redeemed:
    """Take the reward's points with a `redeemed` entry and issue its voucher.

    The account row is locked first, so concurrent redemptions of one customer run one after
    the other and each sees the balance the previous one left: none takes it below zero.
    """
    reward = programme.reward(command.reward)
    if reward is None:
        known = ", ".join(r.code for r in programme.rewards if r.active) or "none"
        raise InvalidField("body.reward", f"unknown reward {command.reward!r}; offered: {known}")
    if not reward.active:
        raise Conflict(f"reward {reward.code!r} is not offered any more", code="reward_inactive")
    cost = price(reward, currency=command.currency, steps=command.steps, points=command.points)
    account = await lock_account(conn, command.shop_id, command.customer_id)
    if account is None:
        raise NotFound(f"customer {command.customer_id!r} has no points", code="unknown_customer")
    check_funds(available=account.points_balance, pending=account.points_pending, cost=cost.points)
    rid = redemption_id()
    entry = NewEntry(
        entry_id=f"redeem:{rid}",
        shop_id=command.shop_id,
        customer_id=command.customer_id,
        kind="redeemed",
        delta=-cost.points,
        reason=f"reward:{reward.code}",
        order_id=None,
        source_event_id=None,
        occurred_at=now,
    )
    (written,) = await write_entries(conn, [entry])
    redemption = Redemption(
        shop_id=command.shop_id,
        redemption_id=rid,
        customer_id=command.customer_id,
        reward_code=reward.code,
        reward_name=reward.name,
        reward_kind=reward.kind,
        points=cost.points,
        value=cost.value,
        currency=cost.currency,
        sku=reward.sku,
        voucher_code=voucher_code(),
        status="issued",
        redeemed_entry_id=entry.entry_id,
        restored_entry_id=None,
        created_at=now,
        expires_at=now + timedelta(days=reward.valid_days),
    )
    await insert_redemption(conn, redemption)
    log.info(
        "reward_redeemed",
        customer_id=command.customer_id,
        reward=reward.code,
        points=cost.points,
        redemption_id=rid,
    )
    return Redeemed(redemption, written)


async def cancel(
    conn: Connection, shop_id: str, redemption_id: str, *, reason: str, now: datetime
) -> Redemption:
    """Void the voucher and give the points back with a `restored` entry, once: cancelling a
    cancelled redemption changes nothing and answers it as it is."""
    found = await read_redemption(conn, shop_id, redemption_id, lock=True)
    if found is None:
        raise NotFound(f"no redemption {redemption_id!r}", code="unknown_redemption")
    if found.status == "cancelled":
        return found
    entry = NewEntry(
        entry_id=f"restore:{redemption_id}",
        shop_id=shop_id,
        customer_id=found.customer_id,
        kind="restored",
        delta=found.points,
        reason=f"cancelled:{found.reward_code}",
        order_id=None,
        source_event_id=None,
        occurred_at=now,
    )
    await write_entries(conn, [entry])
    await mark_cancelled(
        conn, shop_id, redemption_id, restored_entry_id=entry.entry_id, at=now, reason=reason
    )
    log.info("redemption_cancelled", customer_id=found.customer_id, redemption_id=redemption_id)
    return replace(
        found,
        status="cancelled",
        restored_entry_id=entry.entry_id,
        cancelled_at=now,
        cancel_reason=reason,
    )
