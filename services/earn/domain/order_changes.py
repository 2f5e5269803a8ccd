"""Completions, cancellations and refunds of recorded orders, decided in memory in the order
they come: each sees the order as the ones before it left it, as a row lock would. No I/O."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from services.earn.domain.ledger import NewEntry, earned_entries, reversal_entry
from services.earn.domain.memberships import MembershipRow, memberships_ended
from services.earn.domain.order_batch import CardKey, OrderKey, OrderRow
from services.earn.domain.orders import release_after_completion, reversal_target
from services.earn.programme_book import ProgrammeBook
from shared.errors import RejectedMessage
from shared.events import CloudEvent
from shared.outbox import OutboxMessage


def release(
    order: OrderRow,
    programmes: ProgrammeBook,
    points_pending: list[tuple[str, str, int]],
    credit_pending: list[tuple[str, str, str, int]],
    entries: list[NewEntry],
) -> None:
    """A pending order made available: its points (less what was taken back) and store credit
    leave the pending amounts and enter the ledger of the account it earned into, with the
    expiry of that account's programme in force at payment."""
    points = order.points - order.points_reversed
    credit = order.credit_minor - order.credit_reversed
    holder = order.holder
    if points > 0:
        points_pending.append((holder, order.customer_id, -points))
    if credit > 0:
        credit_pending.append((holder, order.customer_id, order.currency, -credit))
    entries += earned_entries(
        programmes.at(holder, order.paid_at),
        shop_id=holder,
        at_shop=order.at_shop,
        customer_id=order.customer_id,
        order_id=order.order_id,
        currency=order.currency,
        paid_event_id=order.paid_event_id,
        at=max(order.release_at, order.paid_at),
        points=points,
        credit=credit,
    )


@dataclass(slots=True)
class Changes:
    """The loaded orders and memberships as the changes leave them, and what to persist."""

    rows: dict[OrderKey, OrderRow]
    memberships: dict[OrderKey, list[MembershipRow]]
    changed: set[OrderKey] = field(default_factory=set)
    completed_at: dict[OrderKey, datetime] = field(default_factory=dict)
    waiting: list[CloudEvent[Any]] = field(default_factory=list)  # of orders not recorded
    points_pending: list[tuple[str, str, int]] = field(default_factory=list)
    credit_pending: list[tuple[str, str, str, int]] = field(default_factory=list)
    punches: dict[CardKey, int] = field(default_factory=dict)  # punches to take back
    entries: list[NewEntry] = field(default_factory=list)
    messages: list[OutboxMessage] = field(default_factory=list)

    def decide(
        self, event: CloudEvent[Any], programmes: ProgrammeBook, now: datetime
    ) -> RejectedMessage | None:
        """order.completed starts the return window; order.cancelled and order.refunded take
        points back and end the memberships they give back. An order not recorded makes the
        event wait for it."""
        data = event.data
        key = (data.shop_id, data.order_id)
        order = self.rows.get(key)
        if order is None:
            self.waiting.append(event)
            return None
        if event.type == "order.completed":
            self._complete(key, order, event.time, programmes, now)
            return None
        if event.type == "order.refunded":
            if data.refund.currency != order.currency:
                return RejectedMessage(
                    f"refund in {data.refund.currency} for an order paid in {order.currency}",
                    error_class="RefundCurrency",
                )
            refunded = min(order.refunded + data.refund.amount, order.paid_total)
            full = data.full or refunded >= order.paid_total
        else:  # cancelled
            refunded, full = order.paid_total, True
        self._take_back(key, order, event, refunded, full=full)
        return None

    def _complete(
        self,
        key: OrderKey,
        order: OrderRow,
        at: datetime,
        programmes: ProgrammeBook,
        now: datetime,
    ) -> None:
        self.changed.add(key)
        self.completed_at[key] = at
        if order.status != "pending":
            return
        programme = programmes.at(order.holder, at)
        due = release_after_completion(order.release_at, at, programme)
        order = replace(order, release_at=due)
        if due <= now:  # released at once, as the release pass would
            order = replace(order, status="available")
            self._release(order, programmes)
        self.rows[key] = order

    def _release(self, order: OrderRow, programmes: ProgrammeBook) -> None:
        release(order, programmes, self.points_pending, self.credit_pending, self.entries)

    def _take_back(
        self,
        key: OrderKey,
        order: OrderRow,
        event: CloudEvent[Any],
        refunded: Decimal,
        *,
        full: bool,
    ) -> None:
        points = reversal_target(order.points, order.paid_total, refunded, full=full)
        credit = reversal_target(order.credit_minor, order.paid_total, refunded, full=full)
        take_points = points - order.points_reversed
        take_credit = credit - order.credit_reversed
        # An order taken back in full before ended its memberships then (also those recorded
        # before earn kept their cancellation). Refunds of an order that cost nothing are full
        # ones from the start: its memberships go with the first.
        paid = order.paid_total > 0
        taken_back_before = order.status == "cancelled" or (
            paid and order.refunded >= order.paid_total
        )
        if not taken_back_before:
            held = self.memberships.get(key, [])
            after, messages = memberships_ended(
                event, order.shop_id, order.order_id, held, full=full, holder=order.holder
            )
            self.memberships[key] = after
            self.messages += messages
        after_order = replace(
            order, refunded=refunded, points_reversed=points, credit_reversed=credit
        )
        if event.type == "order.cancelled" and order.punches:
            for card in order.punches:
                punched = (order.holder, card, order.customer_id)
                self.punches[punched] = self.punches.get(punched, 0) + 1
            after_order = replace(after_order, punches=[])
        self.changed.add(key)
        if order.status == "pending":
            if full:
                after_order = replace(after_order, status="cancelled")
            self.rows[key] = after_order
            if take_points:
                self.points_pending.append((order.holder, order.customer_id, -take_points))
            if take_credit:
                moved = (order.holder, order.customer_id, order.currency, -take_credit)
                self.credit_pending.append(moved)
            return
        self.rows[key] = after_order
        if order.status != "available":
            return
        for delta, currency in ((take_points, None), (take_credit, order.currency)):
            if delta > 0:
                self.entries.append(
                    reversal_entry(
                        event_id=event.id,
                        event_type=event.type,
                        at=event.time,
                        shop_id=order.holder,
                        customer_id=order.customer_id,
                        order_id=order.order_id,
                        delta=-delta,
                        currency=currency,
                        at_shop=order.at_shop,
                    )
                )
