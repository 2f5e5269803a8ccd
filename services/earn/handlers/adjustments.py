"""What the operators ask of earn: points adjusted for one customer, or granted to many."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog

from services.earn.domain.ledger import WrittenEntry, adjusted_entry
from services.earn.refusals import Conflict, NotFound
from services.earn.unit_of_work import UnitOfWork

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class AdjustPoints:
    """Grant (positive) or deduct (negative) points; `force` lets a deduction go below zero.
    `entry_id` is unique within the shop."""

    shop_id: str
    entry_id: str
    customer_id: str
    points: int
    reason: str
    force: bool = False


async def adjust_points(uow: UnitOfWork, command: AdjustPoints, *, now: datetime) -> WrittenEntry:
    """Write one `adjusted` entry. A deduction needs a known customer, and is refused when it
    would take the balance below zero unless forced (a forced one blocks redemptions until
    the balance is positive again)."""
    account = await uow.accounts.lock_points(command.shop_id, command.customer_id)
    if command.points < 0:
        if account is None:
            raise NotFound(
                f"customer {command.customer_id!r} has no points", code="unknown_customer"
            )
        after = account.points_balance + command.points
        if after < 0 and not command.force:
            raise Conflict(
                f"the deduction would leave {after} points; set force to record it anyway",
                code="insufficient_points",
            )
    entry = adjusted_entry(
        command.shop_id,
        command.entry_id,
        command.customer_id,
        command.points,
        reason=command.reason,
        at=now,
    )
    (written,) = await uow.ledger.write([entry])
    log.info("points_adjusted", customer_id=command.customer_id, delta=command.points)
    return written


async def grant_points_in_bulk(
    uow: UnitOfWork,
    shop_id: str,
    batch_id: str,
    grants: Sequence[tuple[str, int]],
    *,
    reason: str,
    now: datetime,
) -> list[WrittenEntry]:
    """Credit every (customer, points) of a batch at the shop; each entry id is derived from
    the batch id and the customer, so the batch can never credit a customer twice."""
    entries = [
        adjusted_entry(shop_id, f"grant:{batch_id}:{c}", c, points, reason=reason, at=now)
        for c, points in grants
    ]
    written = await uow.ledger.write(entries)
    log.info("points_granted_in_bulk", batch_id=batch_id, customers=len(written))
    return written
