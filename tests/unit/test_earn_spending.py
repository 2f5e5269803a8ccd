"""Redemptions of points and store credit spends are one mechanism: the same rules hold for
both, run here against the in-memory unit of work."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from earn_fakes import FakeUnitOfWork

from services.earn.adapters.spends import CreditSpend, Redemption
from services.earn.handlers import (
    RedeemReward,
    SpendCredit,
    cancel_credit_spend,
    cancel_redemption,
    redeem_reward,
    spend_credit,
)
from services.earn.programme import parse_programme
from services.earn.refusals import Conflict, InvalidField, NotFound

NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
SHOP, CUSTOMER = "shop-a", "c-1"
PROGRAMME = parse_programme(
    {
        "currencies": {"USD": {"per_amount": Decimal(1), "points": 1}},
        "rewards": [
            {
                "code": "ten",
                "name": "10 USD off",
                "kind": "voucher",
                "cost_points": 100,
                "value": {"USD": Decimal(10)},
            }
        ],
    }
)


@dataclass
class Kind:
    """One kind of balance, spent and cancelled through its own use cases."""

    name: str
    amount: int  # what one spend takes

    def give(self, uow: FakeUnitOfWork, balance: int, *, pending: int = 0) -> None:
        if self.name == "points":
            uow.give(SHOP, CUSTOMER, balance, pending=pending)
        else:
            uow.credit(SHOP, CUSTOMER, "USD", balance, pending=pending)

    def balance(self, uow: FakeUnitOfWork) -> int:
        if self.name == "points":
            return uow.accounts.points[(SHOP, CUSTOMER)][0]
        return uow.accounts.credit[(SHOP, CUSTOMER, "USD")][0]

    async def spend(self, uow: FakeUnitOfWork) -> str:
        if self.name == "points":
            command = RedeemReward(SHOP, CUSTOMER, "ten")
            done = await redeem_reward(uow, command, programme=PROGRAMME, now=NOW)
            return done.redemption.redemption_id
        spent = await spend_credit(uow, SpendCredit(SHOP, CUSTOMER, "USD", self.amount), now=NOW)
        return spent.spend_id

    async def cancel(self, uow: FakeUnitOfWork, spend_id: str) -> Redemption | CreditSpend:
        if self.name == "points":
            return await cancel_redemption(uow, SHOP, spend_id, reason="r", now=NOW)
        return await cancel_credit_spend(uow, SHOP, spend_id, reason="r", now=NOW)


KINDS = [Kind("points", 100), Kind("store_credit", 1000)]


@pytest.fixture(params=KINDS, ids=lambda k: k.name)
def kind(request: pytest.FixtureRequest) -> Kind:
    found: Kind = request.param
    return found


async def test_a_spend_takes_its_amount_with_a_redeemed_entry(kind: Kind) -> None:
    uow = FakeUnitOfWork()
    kind.give(uow, kind.amount + 5)
    await kind.spend(uow)
    assert kind.balance(uow) == 5
    (written,) = uow.ledger.entries
    assert (written.entry.kind, written.entry.delta) == ("redeemed", -kind.amount)
    assert written.entry.balance_kind == kind.name


@pytest.mark.parametrize(("balance", "code"), [(-1, "negative"), (1, "insufficient")])
async def test_a_balance_that_does_not_cover_the_spend_refuses_it_and_takes_nothing(
    kind: Kind, balance: int, code: str
) -> None:
    uow = FakeUnitOfWork()
    kind.give(uow, balance, pending=kind.amount * 2)  # pending amounts cannot be spent
    with pytest.raises(Conflict) as refused:
        await kind.spend(uow)
    assert refused.value.code.startswith(code)
    assert "pending" in str(refused.value) or code == "negative"
    assert kind.balance(uow) == balance
    assert uow.ledger.entries == []


async def test_a_customer_never_credited_is_not_found(kind: Kind) -> None:
    uow = FakeUnitOfWork()
    with pytest.raises(NotFound) as refused:
        await kind.spend(uow)
    assert refused.value.code == "unknown_customer"


async def test_credit_in_another_currency_names_the_currencies_held() -> None:
    uow = FakeUnitOfWork()
    uow.credit(SHOP, CUSTOMER, "EUR", 5000)
    with pytest.raises(InvalidField, match="held in EUR"):
        await spend_credit(uow, SpendCredit(SHOP, CUSTOMER, "USD", 100), now=NOW)


async def test_a_cancel_gives_the_amount_back_once(kind: Kind) -> None:
    uow = FakeUnitOfWork()
    kind.give(uow, kind.amount)
    spend_id = await kind.spend(uow)
    first = await kind.cancel(uow, spend_id)
    again = await kind.cancel(uow, spend_id)
    assert kind.balance(uow) == kind.amount
    assert [w.entry.kind for w in uow.ledger.entries] == ["redeemed", "restored"]
    assert first == again
    assert first.status == "cancelled"
    assert first.restored_entry_id == uow.ledger.entries[1].entry.entry_id


async def test_cancelling_an_unknown_spend_is_not_found(kind: Kind) -> None:
    with pytest.raises(NotFound):
        await kind.cancel(FakeUnitOfWork(), "nothing")
