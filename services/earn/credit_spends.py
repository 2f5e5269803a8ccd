"""Spending store credit at checkout and cancelling spends, each in the caller's transaction."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Final

import structlog

from services.earn.adapters.credit_spends import (
    CreditSpend,
    insert_spend,
    lock_credit,
    mark_spend_cancelled,
    read_spend,
)
from services.earn.adapters.redemptions import read_account, read_credit
from services.earn.credit import check_credit, spend_id
from services.earn.domain.ledger import NewEntry
from services.earn.entries import write_entries
from services.earn.refusals import InvalidField, NotFound
from shared.db import Connection

log = structlog.get_logger(__name__)

SPEND_REASON: Final = "checkout"
CANCEL_REASON: Final = "cancelled:checkout"


@dataclass(frozen=True, slots=True)
class SpendCredit:
    """The customer pays `amount_minor` minor units of `currency` with store credit held at
    the shop."""

    shop_id: str
    customer_id: str
    currency: str
    amount_minor: int
    order_id: str | None = None


async def spend(conn: Connection, command: SpendCredit, *, now: datetime) -> CreditSpend:
    """Take the amount with a `redeemed` store credit entry and record the spend.

    The credit row of the customer and currency is locked first, so concurrent spends run one
    after the other and each sees the credit the previous one left: none takes it below zero.
    """
    account = await lock_credit(conn, command.shop_id, command.customer_id, command.currency)
    if account is None:
        raise await _unheld(conn, command.shop_id, command.customer_id, command.currency)
    check_credit(
        balance=account.balance_minor,
        pending=account.pending_minor,
        amount=command.amount_minor,
        currency=command.currency,
    )
    sid = spend_id()
    entry = NewEntry(
        entry_id=f"credit-spend:{sid}",
        shop_id=command.shop_id,
        customer_id=command.customer_id,
        kind="redeemed",
        delta=-command.amount_minor,
        reason=SPEND_REASON,
        order_id=command.order_id,
        source_event_id=None,
        occurred_at=now,
        balance_kind="store_credit",
        currency=command.currency,
    )
    (written,) = await write_entries(conn, [entry])
    spent = CreditSpend(
        shop_id=command.shop_id,
        spend_id=sid,
        customer_id=command.customer_id,
        currency=command.currency,
        amount_minor=command.amount_minor,
        order_id=command.order_id,
        balance_after_minor=written.balance_after,
        status="spent",
        spent_entry_id=entry.entry_id,
        restored_entry_id=None,
        created_at=now,
    )
    await insert_spend(conn, spent)
    log.info(
        "store_credit_spent",
        customer_id=command.customer_id,
        currency=command.currency,
        amount_minor=command.amount_minor,
        spend_id=sid,
    )
    return spent


async def _unheld(
    conn: Connection, shop_id: str, customer_id: str, currency: str
) -> NotFound | InvalidField:
    """Why a customer without credit in `currency` cannot spend it: 404 for a customer earn
    has never credited at the shop, 422 naming the currency for one it knows."""
    held = [c for c, _, _ in await read_credit(conn, shop_id, customer_id)]
    if not held and await read_account(conn, shop_id, customer_id) is None:
        return NotFound(f"customer {customer_id!r} has no points", code="unknown_customer")
    others = f"; store credit is held in {', '.join(held)}" if held else ""
    return InvalidField(
        "body.currency", f"the customer holds no store credit in {currency}{others}"
    )


async def cancel_spend(
    conn: Connection, shop_id: str, spend_id: str, *, reason: str, now: datetime
) -> CreditSpend:
    """Give the credit back with a `restored` entry, once: cancelling a cancelled spend
    changes nothing and answers it as it is."""
    found = await read_spend(conn, shop_id, spend_id, lock=True)
    if found is None:
        raise NotFound(f"no store credit spend {spend_id!r}", code="unknown_spend")
    if found.status == "cancelled":
        return found
    entry = NewEntry(
        entry_id=f"credit-restore:{spend_id}",
        shop_id=shop_id,
        customer_id=found.customer_id,
        kind="restored",
        delta=found.amount_minor,
        reason=CANCEL_REASON,
        order_id=found.order_id,
        source_event_id=None,
        occurred_at=now,
        balance_kind="store_credit",
        currency=found.currency,
    )
    await write_entries(conn, [entry])
    await mark_spend_cancelled(
        conn, shop_id, spend_id, restored_entry_id=entry.entry_id, at=now, reason=reason
    )
    log.info("store_credit_spend_cancelled", customer_id=found.customer_id, spend_id=spend_id)
    return replace(
        found,
        status="cancelled",
        restored_entry_id=entry.entry_id,
        cancelled_at=now,
        cancel_reason=reason,
    )
