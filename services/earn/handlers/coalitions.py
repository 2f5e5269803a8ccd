"""The coalition sweep: member shops' own balances carried into their coalition's account, a
chunk per transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog

from services.earn.domain.ledger import NewEntry
from services.earn.domain.sweep import (
    ShopCredit,
    ShopPoints,
    carried_credit,
    carried_points,
    missing_currencies,
)
from services.earn.programme_book import ProgrammeBook
from services.earn.unit_of_work import Transactions
from shared.holders import Holders

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class SweepReport:
    balances: int  # points accounts and store credit balances carried
    points: int  # net points carried
    refused: tuple[str, ...]  # member shops left as they are: see `sweep_members`


async def sweep_members(
    transactions: Transactions,
    holders: Holders,
    programmes: ProgrammeBook,
    *,
    now: datetime,
    chunk: int,
) -> SweepReport:
    """Carry every balance on the own accounts of the shops that are members at `now` into
    their coalition's account, a chunk per transaction. A shop whose currency the coalition's
    programme in force has no rate for (or a coalition with no programme) is refused, logged
    and left as it is: its points would land in a currency the coalition does not earn in."""
    by_coalition: dict[str, list[str]] = {}
    for shop, coalition in sorted(holders.coalitions_at(now).items()):
        by_coalition.setdefault(coalition, []).append(shop)
    balances = points = 0
    refused: list[str] = []
    for coalition, shops in by_coalition.items():
        accepted = _currencies(programmes, coalition, now)
        ready = []
        for shop in shops:
            missing = missing_currencies(_currencies(programmes, shop, now), accepted)
            if missing or not accepted:
                log.warning(
                    "coalition_sweep_refused",
                    shop_id=shop,
                    coalition_id=coalition,
                    missing_currencies=missing,
                )
                refused.append(shop)
            else:
                ready.append(shop)
        if ready:
            done, moved = await _sweep(
                transactions, coalition, ready, sorted(accepted), now=now, chunk=chunk
            )
            balances, points = balances + done, points + moved
    if balances:
        log.info("coalition_sweep_done", at=now.isoformat(), balances=balances, points=points)
    return SweepReport(balances, points, tuple(refused))


def _currencies(programmes: ProgrammeBook, shop_id: str, now: datetime) -> set[str]:
    """The currencies of the shop's earn programme in force (none when it has no programme)."""
    if not programmes.knows(shop_id):
        return set()
    return set(programmes.at(shop_id, now).currencies)


async def _sweep(
    transactions: Transactions,
    coalition: str,
    shops: Sequence[str],
    currencies: Sequence[str],
    *,
    now: datetime,
    chunk: int,
) -> tuple[int, int]:
    """(balances carried, net points carried) from `shops` into `coalition`'s account."""
    balances = points = 0
    while True:
        async with transactions() as uow:
            taken = await uow.accounts.take_points_to_carry(shops, limit=chunk)
            lines = await uow.expiry.lines([(shop, customer) for shop, customer, _, _ in taken])
            credit = await uow.accounts.take_credit_to_carry(shops, currencies, limit=chunk)
            entries: list[NewEntry] = []
            for shop, customer, balance, seq in taken:
                account = ShopPoints(shop, customer, balance, seq, lines[(shop, customer)])
                entries += carried_points(account, coalition, at=now)
            for row in credit:
                entries += carried_credit(ShopCredit(*row), coalition, at=now)
            await uow.ledger.write(entries)
        balances += len(taken) + len(credit)
        points += sum(balance for _, _, balance, _ in taken)
        if len(taken) < chunk and len(credit) < chunk:
            return balances, points
