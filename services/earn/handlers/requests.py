"""What the API asks of earn: spends of points or store credit, and their cancellations, by one
mechanism."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final, TypeVar

import structlog

from services.earn.adapters.spends import CreditSpend, Redemption
from services.earn.domain.ledger import (
    NewEntry,
    WrittenEntry,
)
from services.earn.domain.money import price, voucher_code
from services.earn.domain.spending import (
    POINTS,
    SpendKind,
    check_spend,
    spend_entry,
    store_credit,
)
from services.earn.programme import Programme
from services.earn.refusals import Conflict, InvalidField, NotFound
from services.earn.unit_of_work import Spends, UnitOfWork

log = structlog.get_logger(__name__)


CHECKOUT: Final = "checkout"  # the reason of a store credit spend's entry

T = TypeVar("T", Redemption, CreditSpend)


@dataclass(frozen=True, slots=True)
class RedeemReward:
    """The customer spends points on a reward of the catalogue of the shop's holder (the
    shop, or its coalition), from the holder's account."""

    shop_id: str
    customer_id: str
    reward: str
    currency: str | None = None
    steps: int | None = None
    points: int | None = None
    holder_id: str | None = None  # None: the shop holds its own accounts


@dataclass(frozen=True, slots=True)
class Redeemed:
    redemption: Redemption
    entry: WrittenEntry


@dataclass(frozen=True, slots=True)
class SpendCredit:
    """The customer pays `amount_minor` minor units of `currency` with store credit held at
    the shop."""

    shop_id: str
    customer_id: str
    currency: str
    amount_minor: int
    order_id: str | None = None
    holder_id: str | None = None  # None: the shop holds its own accounts


async def redeem_reward(
    uow: UnitOfWork, command: RedeemReward, *, programme: Programme, now: datetime
) -> Redeemed:
    """Take the reward's points with a `redeemed` entry and issue its voucher."""
    reward = programme.reward(command.reward)
    if reward is None:
        known = ", ".join(r.code for r in programme.rewards if r.active) or "none"
        raise InvalidField("body.reward", f"unknown reward {command.reward!r}; offered: {known}")
    if not reward.active:
        raise Conflict(f"reward {reward.code!r} is not offered any more", code="reward_inactive")
    cost = price(reward, currency=command.currency, steps=command.steps, points=command.points)
    rid, written = await _spend(
        uow, POINTS, _Where(command.shop_id, command.holder_id), command.customer_id,
        cost.points, reason=f"reward:{reward.code}", order_id=None, now=now,
    )  # fmt: skip
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
        redeemed_entry_id=written.entry.entry_id,
        restored_entry_id=None,
        created_at=now,
        expires_at=now + timedelta(days=reward.valid_days),
        holder_id=_holder_column(command.shop_id, command.holder_id),
    )
    await uow.redemptions.add(redemption)
    log.info(
        "reward_redeemed",
        customer_id=command.customer_id,
        reward=reward.code,
        points=cost.points,
        redemption_id=rid,
    )
    return Redeemed(redemption, written)


async def spend_credit(uow: UnitOfWork, command: SpendCredit, *, now: datetime) -> CreditSpend:
    """Take the amount with a `redeemed` store credit entry and record the spend."""
    sid, written = await _spend(
        uow, store_credit(command.currency), _Where(command.shop_id, command.holder_id),
        command.customer_id, command.amount_minor, reason=CHECKOUT, order_id=command.order_id,
        now=now,
    )  # fmt: skip
    spent = CreditSpend(
        shop_id=command.shop_id,
        spend_id=sid,
        customer_id=command.customer_id,
        currency=command.currency,
        amount_minor=command.amount_minor,
        order_id=command.order_id,
        balance_after_minor=written.balance_after,
        status="spent",
        spent_entry_id=written.entry.entry_id,
        restored_entry_id=None,
        created_at=now,
        holder_id=_holder_column(command.shop_id, command.holder_id),
    )
    await uow.credit_spends.add(spent)
    log.info(
        "store_credit_spent",
        customer_id=command.customer_id,
        currency=command.currency,
        amount_minor=command.amount_minor,
        spend_id=sid,
    )
    return spent


async def cancel_redemption(
    uow: UnitOfWork, shop_id: str, redemption_id: str, *, reason: str, now: datetime
) -> Redemption:
    """Void the voucher and give the points back with a `restored` entry, once: cancelling a
    cancelled redemption changes nothing and answers it as it is."""

    def restore(found: Redemption) -> NewEntry:
        return spend_entry(
            POINTS, redemption_id, shop_id=found.holder, customer_id=found.customer_id,
            amount=found.points, reason=f"cancelled:{found.reward_code}", order_id=None, at=now,
            at_shop=_Where(shop_id, found.holder_id).at_shop, restored=True,
        )  # fmt: skip

    missing = NotFound(f"no redemption {redemption_id!r}", code="unknown_redemption")
    found, done = await _cancel(
        uow, uow.redemptions, shop_id, redemption_id,
        missing=missing, restore=restore, reason=reason, now=now,
    )  # fmt: skip
    if done:
        log.info("redemption_cancelled", customer_id=found.customer_id, redemption_id=redemption_id)
    return found


async def cancel_credit_spend(
    uow: UnitOfWork, shop_id: str, spend_id: str, *, reason: str, now: datetime
) -> CreditSpend:
    """Give the credit back with a `restored` entry, once: cancelling a cancelled spend
    changes nothing and answers it as it is."""

    def restore(found: CreditSpend) -> NewEntry:
        return spend_entry(
            store_credit(found.currency), spend_id, shop_id=found.holder,
            customer_id=found.customer_id, amount=found.amount_minor,
            reason=f"cancelled:{CHECKOUT}", order_id=found.order_id, at=now,
            at_shop=_Where(shop_id, found.holder_id).at_shop, restored=True,
        )  # fmt: skip

    missing = NotFound(f"no store credit spend {spend_id!r}", code="unknown_spend")
    found, done = await _cancel(
        uow, uow.credit_spends, shop_id, spend_id,
        missing=missing, restore=restore, reason=reason, now=now,
    )  # fmt: skip
    if done:
        log.info("store_credit_spend_cancelled", customer_id=found.customer_id, spend_id=spend_id)
    return found


@dataclass(frozen=True, slots=True)
class _Where:
    """A spend's shop, and the account it debits: the shop's own, or its coalition's."""

    shop_id: str
    holder_id: str | None

    @property
    def holder(self) -> str:
        return self.holder_id or self.shop_id

    @property
    def at_shop(self) -> str | None:
        return None if self.holder == self.shop_id else self.shop_id


def _holder_column(shop_id: str, holder_id: str | None) -> str | None:
    """A spend row's holder_id: NULL when the shop holds its own accounts."""
    return None if holder_id in (None, shop_id) else holder_id


async def _spend(
    uow: UnitOfWork,
    kind: SpendKind,
    where: _Where,
    customer_id: str,
    amount: int,
    *,
    reason: str,
    order_id: str | None,
    now: datetime,
) -> tuple[str, WrittenEntry]:
    """Take `amount` of the customer's balance of `kind`: the new spend's id and its entry.

    The balance row is locked first, so concurrent spends of one balance run one after the
    other and each sees what the previous one left: none takes it below zero.
    """
    shop_id = where.holder
    if kind.currency is None:
        points = await uow.accounts.lock_points(shop_id, customer_id)
        held = None if points is None else (points.points_balance, points.points_pending)
    else:
        credit = await uow.accounts.lock_credit(shop_id, customer_id, kind.currency)
        held = None if credit is None else (credit.balance_minor, credit.pending_minor)
    if held is None:
        raise await _unheld(uow, kind, shop_id, customer_id)
    check_spend(kind, available=held[0], pending=held[1], amount=amount)
    spend_id = kind.new_id()
    entry = spend_entry(
        kind, spend_id, shop_id=shop_id, customer_id=customer_id, amount=amount,
        reason=reason, order_id=order_id, at=now, at_shop=where.at_shop,
    )  # fmt: skip
    (written,) = await uow.ledger.write([entry])
    return spend_id, written


async def _unheld(
    uow: UnitOfWork, kind: SpendKind, shop_id: str, customer_id: str
) -> NotFound | InvalidField:
    """Why a customer without a balance of `kind` cannot spend it: 404 for a customer earn has
    never credited at the shop, 422 naming the currency for one it knows."""
    unknown = NotFound(f"customer {customer_id!r} has no points", code="unknown_customer")
    if kind.currency is None:
        return unknown
    held = [c for c, _, _ in await uow.accounts.read_credit(shop_id, customer_id)]
    if not held and await uow.accounts.read_points(shop_id, customer_id) is None:
        return unknown
    others = f"; store credit is held in {', '.join(held)}" if held else ""
    return InvalidField(
        "body.currency", f"the customer holds no store credit in {kind.currency}{others}"
    )


async def _cancel(
    uow: UnitOfWork,
    spends: Spends[T],
    shop_id: str,
    spend_id: str,
    *,
    missing: NotFound,
    restore: Callable[[T], NewEntry],
    reason: str,
    now: datetime,
) -> tuple[T, bool]:
    """The spend cancelled, and whether this call cancelled it: the first gives the amount
    back (its `restored` entry), later ones change nothing."""
    found = await spends.get(shop_id, spend_id, lock=True)
    if found is None:
        raise missing
    if found.status == "cancelled":
        return found, False
    entry = restore(found)
    await uow.ledger.write([entry])
    await spends.mark_cancelled(
        shop_id, spend_id, restored_entry_id=entry.entry_id, at=now, reason=reason
    )
    cancelled = replace(
        found,
        status="cancelled",
        restored_entry_id=entry.entry_id,
        cancelled_at=now,
        cancel_reason=reason,
    )
    return cancelled, True
