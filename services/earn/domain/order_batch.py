"""A batch of shop.orders decided in memory: which events are admitted, what each fresh payment
earns, and how campaign caps and punch cards settle in batch order. No I/O: the handler loads
what these rules need first and persists what they decide after."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from services.earn.domain.orders import (
    Earning,
    MembershipSale,
    capped,
    earning_of,
    first_release,
    over_ledger_limit,
)
from services.earn.programme import Programme
from services.earn.programme_book import ProgrammeBook, UnknownShop
from shared.consumer import Incoming, Rejection
from shared.errors import RejectedMessage
from shared.events import CloudEvent, OrderPaid
from shared.events.times import ahead_of_clock
from shared.holders import Holders

CHANGES = ("order.completed", "order.cancelled", "order.refunded")

OrderKey = tuple[str, str]  # (shop, order id)
CustomerKey = tuple[str, str]  # (holder, customer id)
CampaignKey = tuple[str, str]  # (holder, campaign code)
UsageKey = tuple[str, str, str]  # (holder, campaign code, customer id)
CardKey = tuple[str, str, str]  # (holder, card code, customer id)
# A payment admitted, with the holder of its shop's accounts at its time.
PaidEvent = tuple[Incoming, CloudEvent[Any], str]
# An event waiting for its order: (event id, shop, order id, type, occurred at, event JSON).
Waiting = tuple[str, str, str, str, datetime, str]
# A customer's first order on an account: (holder, customer id, order id, paid event id, paid at).
FirstOrder = tuple[str, str, str, str, datetime]


@dataclass(slots=True)  # not frozen: one per order, and frozen makes __init__ 3 times slower
class NewOrder:
    shop_id: str
    order_id: str
    customer_id: str
    currency: str
    paid_event_id: str
    paid_at: datetime
    paid_total: Decimal
    base_amount: Decimal
    points: int
    credit_minor: int
    breakdown: dict[str, Any]
    punches: list[str]
    release_at: datetime
    holder_id: str  # the account it earns into: the shop, or its coalition at payment


@dataclass(frozen=True, slots=True)
class OrderRow:
    shop_id: str
    order_id: str
    customer_id: str
    currency: str
    paid_event_id: str
    paid_at: datetime
    paid_total: Decimal
    points: int
    credit_minor: int
    punches: list[str]
    refunded: Decimal
    points_reversed: int
    credit_reversed: int
    status: str
    release_at: datetime
    holder_id: str | None = None  # the account it earned into, when not the shop's own

    @property
    def holder(self) -> str:
        """The account the order earned into, and takes back from (also after leaving)."""
        return self.holder_id or self.shop_id

    @property
    def at_shop(self) -> str | None:
        """The shop, on the entries of a coalition's account; None on the shop's own."""
        return None if self.holder_id in (None, self.shop_id) else self.shop_id


def at_shop(shop_id: str, holder: str) -> str | None:
    """The at_shop of an entry at `shop_id` on `holder`'s account: None on a shop's own."""
    return None if holder == shop_id else shop_id


@dataclass(slots=True)
class Admitted:
    """A batch's events neither dated too far ahead nor of a shop without a programme."""

    paid: list[PaidEvent] = field(default_factory=list)
    changes: list[Incoming] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)

    @property
    def paid_keys(self) -> list[OrderKey]:
        return [(e.data.shop_id, e.data.order_id) for _, e, _ in self.paid]


def admit(
    events: Sequence[Incoming],
    programmes: ProgrammeBook,
    holders: Holders,
    *,
    now: datetime,
    ahead_max: timedelta,
) -> Admitted:
    """Sort the batch: payments (with their holder) and changes, in batch order, and the events
    refused: those of a shop whose holder has no programme, and those naming a coalition as
    their shop (a coalition has no orders of its own)."""
    batch = Admitted()
    holder = ""
    for incoming in events:
        event = incoming.event
        error = None if event is None else ahead_of_clock(event, now, ahead_max)
        if error is None and event is not None:
            shop = event.data.shop_id
            holder = holders.at(shop, event.time)
            if not programmes.knows(holder) or holders.is_coalition(shop):
                error = UnknownShop(shop)
        if error is not None:
            batch.rejections.append(Rejection(incoming, error))
        elif event is not None and event.type == "order.paid":
            batch.paid.append((incoming, event, holder))
        elif event is not None and event.type in CHANGES:
            batch.changes.append(incoming)
    return batch


def first_payments(
    paid: Sequence[PaidEvent], known: set[OrderKey]
) -> tuple[list[PaidEvent], list[CloudEvent[Any]]]:
    """The payments of orders not recorded yet, the first of each order only; and those
    ignored (an order paid twice under two event ids: the first counts)."""
    seen = set(known)
    fresh, again = [], []
    for incoming, event, holder in paid:
        key = (event.data.shop_id, event.data.order_id)
        if key in seen:
            again.append(event)
            continue
        seen.add(key)
        fresh.append((incoming, event, holder))
    return fresh, again


@dataclass(slots=True)
class Paid:
    """What the batch's fresh payments earn before caps and punch cards are settled."""

    # (payment, holder, the holder's programme at its time, what it earns)
    earnings: list[tuple[CloudEvent[Any], str, Programme, Earning]] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)

    def campaign_needs(self) -> tuple[set[CampaignKey], set[UsageKey]]:
        """The capped campaigns' counters the batch needs: totals, and each customer's usage."""
        totals: set[CampaignKey] = set()
        usage: set[UsageKey] = set()
        for event, holder, _, earning in self.earnings:
            for bonus in earning.bonuses:
                c = bonus.campaign
                if c.per_customer_cap is not None or c.total_cap is not None:
                    totals.add((holder, c.code))
                    usage.add((holder, c.code, event.data.customer_id))
        return totals, usage

    def punches(self) -> dict[CardKey, int]:
        """The punches the batch adds, per card and customer."""
        adds: dict[CardKey, int] = {}
        for event, holder, _, earning in self.earnings:
            for card in earning.punch_cards:
                key = (holder, card.code, event.data.customer_id)
                adds[key] = adds.get(key, 0) + 1
        return adds

    def sales(self) -> list[tuple[CloudEvent[Any], MembershipSale]]:
        return [(e, sale) for e, _, _, earning in self.earnings for sale in earning.memberships]


def decide_paid(
    fresh: Sequence[PaidEvent],
    multipliers: Sequence[Decimal],
    held: dict[CustomerKey, int],
    programmes: ProgrammeBook,
) -> Paid:
    """What each fresh payment earns under its holder's programme at its time; payments refused
    (no rate for the currency, points past the ledger's range) earn nothing and move no
    counter."""
    paid = Paid()
    for (incoming, event, holder), multiplier in zip(fresh, multipliers, strict=True):
        order: OrderPaid = event.data
        programme = programmes.at(holder, event.time)
        earning = earning_of(order, event.time, programme, multiplier)
        if earning is None:
            error = RejectedMessage(
                f"no earning rate is configured for currency {order.currency}",
                error_class="NoEarnRate",
            )
            paid.rejections.append(Rejection(incoming, error))
            continue
        if over_ledger_limit(held, (holder, order.customer_id), most_points(earning)):
            error = RejectedMessage(
                "the points of this order would take the customer's points past what the"
                " ledger holds (a 64-bit integer)",
                error_class="PointsOutOfRange",
            )
            paid.rejections.append(Rejection(incoming, error))
            continue
        paid.earnings.append((event, holder, programme, earning))
    return paid


@dataclass(slots=True)
class Counters:
    """The counters loaded for a batch, moved in memory as its orders settle."""

    totals: dict[CampaignKey, int] = field(default_factory=dict)
    usage: dict[UsageKey, int] = field(default_factory=dict)
    # Per card and customer: the count before this batch's punches.
    punched: dict[CardKey, int] = field(default_factory=dict)
    granted: dict[UsageKey, int] = field(default_factory=dict)  # bonus points granted now


def settle(paid: Paid, counters: Counters) -> list[tuple[NewOrder, Programme]]:
    """The batch's orders with their points: campaign caps and punch cards settled in batch
    order, so two orders of one customer in a batch see each other's bonuses and punches."""
    orders = []
    for event, holder, programme, earning in paid.earnings:
        order: OrderPaid = event.data
        if earning.bonuses or earning.punch_cards:
            points, breakdown, punches = _settle(order, holder, earning, counters)
        else:  # most orders: no counters to read
            points, breakdown, punches = earning.tier_points, breakdown_of(earning), []
        new = NewOrder(
            shop_id=order.shop_id,
            order_id=order.order_id,
            customer_id=order.customer_id,
            currency=order.currency,
            paid_event_id=event.id,
            paid_at=event.time,
            paid_total=order.totals.total.amount,
            base_amount=earning.base_amount,
            points=points,
            credit_minor=earning.credit_minor,
            breakdown=breakdown,
            punches=punches,
            release_at=first_release(event.time, programme),
            holder_id=holder,
        )
        orders.append((new, programme))
    return orders


def _settle(
    order: OrderPaid, holder: str, earning: Earning, counters: Counters
) -> tuple[int, dict[str, Any], list[str]]:
    breakdown = breakdown_of(earning)
    points = earning.tier_points
    shop, customer = holder, order.customer_id
    for bonus in earning.bonuses:
        campaign = bonus.campaign
        granted = bonus.points
        if campaign.per_customer_cap is not None or campaign.total_cap is not None:
            usage = (shop, campaign.code, customer)
            mine, everyone = counters.usage.get(usage, 0), counters.totals[(shop, campaign.code)]
            granted = capped(bonus.points, mine, everyone, campaign)
            if granted > 0:
                counters.usage[usage] = mine + granted
                counters.totals[(shop, campaign.code)] = everyone + granted
                counters.granted[usage] = counters.granted.get(usage, 0) + granted
        if granted > 0:
            breakdown[f"campaign:{campaign.code}"] = granted
            points += granted
    punches = []
    for card in earning.punch_cards:
        key = (shop, card.code, customer)
        count = counters.punched[key] + 1
        counters.punched[key] = count
        punches.append(card.code)
        if count % card.every == 0:
            breakdown[f"punch_card:{card.code}"] = card.reward_points
            points += card.reward_points
    return points, breakdown, punches


def first_orders(orders: Sequence[NewOrder]) -> list[FirstOrder]:
    """Each account's earliest of these orders (by payment time, then order id), in account
    order: its customer's first order there, unless one was recorded before."""
    first: dict[CustomerKey, NewOrder] = {}
    for o in orders:
        key = (o.holder_id, o.customer_id)
        seen = first.get(key)
        if seen is None or (o.paid_at, o.order_id) < (seen.paid_at, seen.order_id):
            first[key] = o
    return [(h, c, o.order_id, o.paid_event_id, o.paid_at) for (h, c), o in sorted(first.items())]


def most_points(earning: Earning) -> int:
    """The order's points if every campaign and punch card paid in full: checked before any
    counter is moved, so a refused order leaves none behind."""
    bonuses = sum(b.points for b in earning.bonuses)
    return earning.tier_points + bonuses + sum(c.reward_points for c in earning.punch_cards)


def breakdown_of(earning: Earning) -> dict[str, Any]:
    """The parts of an order's points before campaigns and punch cards, and its cashback."""
    breakdown: dict[str, Any] = {"base": earning.base_points, "tier": earning.tier_points}
    if earning.credit_minor:
        breakdown["cashback_minor"] = earning.credit_minor
    return breakdown
