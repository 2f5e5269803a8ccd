"""One claimed message: check the rules again, render, send, record the outcome and its event."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import structlog

from services.notify.adapters import outcomes, projections, schedule
from services.notify.adapters.channel import (
    Channel,
    ChannelUnavailable,
    DeliveryError,
    Envelope,
    PermanentDelivery,
    SubscriptionGone,
    TransientDelivery,
)
from services.notify.adapters.email import deliverable, message_id_for
from services.notify.adapters.projections import SCHEMA
from services.notify.adapters.schedule import Claimed
from services.notify.domain.rules import Defer, QuietHours, Send, Situation, Suppress, decide
from services.notify.domain.rules import retry_delay as backoff
from services.notify.domain.tokens import sign_unsubscribe
from services.notify.rendering import TemplateProblem
from services.notify.settings import NotifySettings
from services.notify.shop_messages import ShopMessages, ShopMessageSettings
from shared import metrics
from shared.db import Connection
from shared.errors import Bug
from shared.holders import Holders
from shared.outbox import OutboxMessage, enqueue

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Deliverer:
    """What sending needs: settings, each shop's messaging settings and templates, channels by
    name, the relay to wake, and who holds each shop's accounts (the balance and tier a
    message shows are the coalition's while its shop is a member)."""

    settings: NotifySettings
    shops: ShopMessageSettings
    channels: Mapping[str, Channel]
    secret: str
    on_commit: Callable[[], None] = lambda: None
    holders: Holders = field(default_factory=Holders)

    async def deliver(self, conn: Connection, message: Claimed, now: datetime) -> str:
        """Decide and act on one claimed message; returns the outcome recorded."""
        if not await schedule.lock_customer(conn, message.member):
            await schedule.release(conn, message, now)
            return "busy"
        try:
            return await self._deliver_locked(conn, message, now)
        finally:
            await schedule.unlock_customer(conn, message.member)

    async def _deliver_locked(self, conn: Connection, message: Claimed, now: datetime) -> str:
        if message.attempts > self.settings.max_attempts:
            return await self._failed(conn, message, "gave up after repeated attempts", now)
        customer = await _customer(conn, message, self.holders.at(message.shop_id, now))
        channel = self.channels.get(message.channel)
        if channel is None:
            return await self._suppressed(conn, message, "invalid_address", now)
        shop = self.shops.for_shop(message.shop_id, now)
        decision = decide(
            await self._situation(conn, message, customer, shop, now),
            now=now,
            quiet=QuietHours(shop.quiet_hours_start, shop.quiet_hours_end),
            cap=shop.frequency_cap,
            zone_default="UTC",
        )
        if isinstance(decision, Suppress):
            return await self._suppressed(conn, message, decision.reason, now)
        if isinstance(decision, Defer):
            await self._record(
                conn,
                message,
                status="pending",
                outcome="deferred",
                detail=f"quiet hours until {decision.until.isoformat()}",
                now=now,
                due_at=decision.until,
                give_back_attempt=True,
            )
            return "deferred"
        if not isinstance(decision, Send) or customer is None:
            raise Bug("decide() sends only to known customers")
        return await self._send(conn, message, customer, channel, now)

    async def _send(
        self,
        conn: Connection,
        message: Claimed,
        customer: asyncpg.Record,
        channel: Channel,
        now: datetime,
    ) -> str:
        try:
            envelope = self._envelope(message, customer, now)
            await channel.send(envelope)
        except TemplateProblem as exc:
            return await self._failed(conn, message, f"template: {exc}", now)
        except SubscriptionGone as exc:
            await projections.forget_push_subscription(
                conn, message.shop_id, message.customer_id, now
            )
            return await self._failed(conn, message, str(exc), now)
        except PermanentDelivery as exc:
            return await self._failed(conn, message, str(exc), now)
        except ChannelUnavailable as exc:
            return await self._retry(conn, message, exc, now, counted=False)
        except TransientDelivery as exc:
            return await self._retry(conn, message, exc, now)
        event = outcomes.sent(message, now)
        await self._record(
            conn, message, status="sent", outcome="sent", detail=None, now=now, event=event
        )
        log.info("notification_sent", **_fields(message))
        return "sent"

    async def _situation(
        self,
        conn: Connection,
        message: Claimed,
        customer: asyncpg.Record | None,
        shop: ShopMessages,
        now: datetime,
    ) -> Situation:
        since = message.payload.get("since")
        ordered = bool(since) and await schedule.ordered_since(
            conn, message.member, datetime.fromisoformat(str(since))
        )
        sent = 0
        if message.category == "marketing":
            window_start = now - shop.frequency_window
            sent = await schedule.sent_in_window(
                conn, message.member, message.channel, window_start
            )
        column = "email" if message.channel == "email" else "push"
        address = "email" if message.channel == "email" else "push_subscription"
        has_address = bool(customer and customer[address])
        if has_address and message.channel == "email" and customer is not None:
            has_address = deliverable(customer["email"])
        return Situation(
            channel=message.channel,
            category=message.category,
            known_customer=customer is not None,
            consent=bool(customer and customer[f"consent_{column}"]),
            unsubscribed=bool(customer and customer[f"unsubscribed_{column}_at"]),
            has_address=has_address,
            ordered_since=ordered,
            sent_in_window=sent,
            time_zone=customer["time_zone"] if customer else None,
        )

    def _envelope(self, message: Claimed, customer: asyncpg.Record, now: datetime) -> Envelope:
        shop = self.shops.for_shop(message.shop_id, now)
        token = sign_unsubscribe(message.shop_id, message.customer_id, message.channel, self.secret)
        unsubscribe_url = f"{self.settings.public_base_url}/unsubscribe?token={token}"
        values: dict[str, Any] = {
            "name": customer["name"] or "",
            "balance": customer["balance"] or 0,
            "tier_name": customer["tier_name"] or customer["tier"] or "",
            "benefits": json.loads(customer["benefits"]) if customer["benefits"] else [],
            "shop_url": shop.storefront_url,
            "unsubscribe_url": unsubscribe_url,
            "currency": shop.default_currency,
            **message.payload,
        }
        renderer = self.shops.renderer_for(message.shop_id, now)
        rendered = renderer.render(message.template, customer["locale"], values)
        subscription = customer["push_subscription"]
        return Envelope(
            message_id=message_id_for(message.message_id, shop.mail_from),
            shop_id=message.shop_id,
            customer_id=message.customer_id,
            trigger=message.trigger,
            category=message.category,
            rendered=rendered,
            email=customer["email"],
            name=customer["name"],
            push_subscription=json.loads(subscription) if subscription else None,
            unsubscribe_url=unsubscribe_url,
            link=str(message.payload.get("cart_url") or shop.storefront_url),
            mail_from=shop.mail_from,
        )

    async def _retry(
        self,
        conn: Connection,
        message: Claimed,
        error: DeliveryError,
        now: datetime,
        *,
        counted: bool = True,
    ) -> str:
        """Again later; a try that is not `counted` (the channel's fault) is given back, so
        the message waits for the channel however long that takes, `retry_base_s` apart."""
        if counted and message.attempts >= self.settings.max_attempts:
            return await self._failed(
                conn, message, f"{error} (after {message.attempts} tries)", now
            )
        due = now + backoff(message.attempts if counted else 1, self.settings.retry_base_s)
        await self._record(
            conn,
            message,
            status="pending",
            outcome="retry",
            detail=str(error),
            now=now,
            due_at=due,
            give_back_attempt=not counted,
        )
        log.warning(
            "notification_retry", error=str(error), retry_at=due.isoformat(), **_fields(message)
        )
        return "retry"

    async def _failed(self, conn: Connection, message: Claimed, error: str, now: datetime) -> str:
        event = outcomes.failed(message, error, now)
        await self._record(
            conn, message, status="failed", outcome="failed", detail=error, now=now, event=event
        )
        log.error("notification_failed", error=error, **_fields(message))
        return "failed"

    async def _suppressed(
        self, conn: Connection, message: Claimed, reason: str, now: datetime
    ) -> str:
        event = outcomes.suppressed(message, reason, now)
        await self._record(
            conn,
            message,
            status="suppressed",
            outcome="suppressed",
            detail=reason,
            now=now,
            event=event,
        )
        log.info("notification_suppressed", reason=reason, **_fields(message))
        return "suppressed"

    async def _record(
        self,
        conn: Connection,
        message: Claimed,
        *,
        status: str,
        outcome: str,
        detail: str | None,
        now: datetime,
        event: OutboxMessage | None = None,
        due_at: datetime | None = None,
        give_back_attempt: bool = False,
    ) -> None:
        """Status, delivery log and event in one transaction, only while the row is still ours."""
        async with conn.transaction():
            ours = await schedule.set_outcome(
                conn,
                message,
                status=status,
                now=now,
                due_at=due_at,
                give_back_attempt=give_back_attempt,
            )
            if not ours:
                log.warning("notification_lease_lost", **_fields(message))
                return
            await schedule.log_attempts(conn, [(message, outcome, detail)], now)
            if event is not None:
                await enqueue(conn, SCHEMA, [event])
        if event is not None:
            self.on_commit()
            metrics.NOTIFICATIONS.labels("notify", message.trigger, message.channel, status).inc()


async def _customer(conn: Connection, message: Claimed, holder: str) -> asyncpg.Record | None:
    """The shop's customer (profile, consent), with the tier and balance of the account that
    `holder` keeps: the shop's own, or its coalition's."""
    row: asyncpg.Record | None = await conn.fetchrow(
        f"""SELECT c.*, t.tier, t.tier_name, t.benefits, p.balance
            FROM {SCHEMA}.customers c
            LEFT JOIN {SCHEMA}.tiers t ON t.shop_id = $3 AND t.customer_id = c.customer_id
            LEFT JOIN {SCHEMA}.points p ON p.shop_id = $3 AND p.customer_id = c.customer_id
            WHERE c.shop_id = $1 AND c.customer_id = $2""",
        message.shop_id,
        message.customer_id,
        holder,
    )
    return row


def _fields(message: Claimed) -> dict[str, Any]:
    return {
        "notification_id": message.notification_id,
        "shop_id": message.shop_id,
        "customer_id": message.customer_id,
        "trigger": message.trigger,
        "channel": message.channel,
        "attempt": message.attempts,
    }
