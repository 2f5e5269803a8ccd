"""A customer as the console shows them: each service's answer as a panel that may be missing
(the service does not know the customer) or unavailable (it did not answer), and the tier
progress as a bar and a sentence."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from services.console.adapters.upstream import (
    JsonObject,
    ShopApi,
    UpstreamProblem,
    UpstreamUnavailable,
)


@dataclass(frozen=True)
class Panel:
    """One source's answer: its body, or `missing` (it answered 404), or neither (unavailable:
    a timeout, a 5xx, a refusal the page cannot help)."""

    data: JsonObject | None = None
    missing: bool = False

    @property
    def unavailable(self) -> bool:
        return self.data is None and not self.missing


async def panel(call: Awaitable[JsonObject]) -> Panel:
    try:
        return Panel(await call)
    except UpstreamProblem as problem:
        return Panel(missing=problem.status == 404)
    except UpstreamUnavailable:
        return Panel()


@dataclass(frozen=True)
class Progress:
    """How far the customer is towards the next tier: the bar (`value` of `maximum`) and the
    amount still needed (money when `currency` names one, else points)."""

    tier_name: str
    needed: Decimal
    currency: str | None
    value: Decimal
    maximum: Decimal


def _amount(raw: object) -> Decimal | None:
    try:
        return Decimal(str(raw))
    except (InvalidOperation, ValueError):
        return None


def progress_of(answer: JsonObject | None) -> Progress | None:
    """The bar towards tiering's `next` target, measured in the unit of its first `needed`
    amount; None at the top tier or for an answer the page cannot read."""
    target = (answer or {}).get("next")
    if not isinstance(target, dict) or not target.get("needed"):
        return None
    first = target["needed"][0]
    needed, currency = _amount(first.get("amount")), first.get("currency")
    if needed is None:
        return None
    same_unit = [
        _amount(q.get("amount"))
        for q in (answer or {}).get("qualifying") or []
        if q.get("currency") == currency
    ]
    qualifying = next((q for q in same_unit if q is not None), Decimal(0))
    return Progress(
        tier_name=str(target.get("tier_name") or target.get("tier")),
        needed=needed,
        currency=currency if isinstance(currency, str) else None,
        value=qualifying,
        maximum=qualifying + needed,
    )


@dataclass(frozen=True)
class CustomerPanels:
    """Everything the customer page shows, from the seven calls made at once."""

    profile: Panel
    messages: Panel
    balance: Panel
    ledger: Panel
    tier: Panel
    progress: Panel
    history: Panel

    @property
    def unknown(self) -> bool:
        """Neither notify nor earn knows the customer at this shop (another shop's customer
        is one of these): the page is a 404."""
        return self.profile.missing and self.balance.missing


async def customer_panels(
    api: ShopApi,
    customer_id: str,
    *,
    ledger_cursor: str | None = None,
    messages_cursor: str | None = None,
) -> CustomerPanels:
    """The seven calls at once, each within the upstream timeout; none fails the page."""
    found = await asyncio.gather(
        panel(api.profile(customer_id)),
        panel(api.messages(customer_id, messages_cursor)),
        panel(api.balance(customer_id)),
        panel(api.ledger(customer_id, ledger_cursor)),
        panel(api.tier(customer_id)),
        panel(api.progress(customer_id)),
        panel(api.history(customer_id)),
    )
    return CustomerPanels(*found)
