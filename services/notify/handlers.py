"""Batch handlers: keep notify's projections and plan the messages each event asks for.

Every customer is a customer of one shop (the input events' `data.shop_id`): profiles, consent
and messages are keyed by (shop, customer). Balances and tiers are the account's, keyed by the
points and tiers events' `shop_id`, the holder: a coalition's members share it, and their
messages come from the member shop named in `at_shop`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import structlog

from services.notify.adapters import digests, outcomes, projections, schedule
from services.notify.adapters.projections import CustomerPatch, Member
from services.notify.domain import triggers
from services.notify.domain.digests import digest_day
from services.notify.domain.messages import PlannedMessage, cart_cancel_key
from services.notify.settings import NotifySettings
from shared import metrics
from shared.clock import Clock
from shared.consumer import Incoming, Rejection
from shared.db import Connection
from shared.events import CustomerSignedUp, CustomerUpdated
from shared.outbox import enqueue

log = structlog.get_logger(__name__)

ORDERED = frozenset({"order.placed", "order.paid", "order.completed"})


async def on_customers(
    conn: Connection, events: Sequence[Incoming], *, clock: Clock
) -> list[Rejection]:
    """Profile, consent and push subscription; a welcome for each sign-up."""
    patches: dict[Member, CustomerPatch] = {}
    plans: list[PlannedMessage] = []
    for incoming in events:
        event = incoming.event
        if event is None:
            continue
        data = event.data
        fields = _signed_up(data) if isinstance(data, CustomerSignedUp) else _updated(data)
        if isinstance(data, CustomerSignedUp):
            fields["signed_up_at"] = event.time.isoformat()
            plans += triggers.welcome(data, at=event.time)
        member = (data.shop_id, data.customer_id)
        previous = patches.get(member)
        merged = {**previous.fields, **fields} if previous else fields
        patches[member] = CustomerPatch(data.shop_id, data.customer_id, merged, event.time)
    now = clock.now()
    await projections.patch_customers(conn, list(patches.values()))
    zones = {c: str(p.fields["time_zone"]) for c, p in patches.items() if "time_zone" in p.fields}
    duplicates = await digests.rezone_digests(conn, zones, now) if zones else []
    await enqueue(
        conn, projections.SCHEMA, [outcomes.suppressed(m, "duplicate", now) for m in duplicates]
    )
    for message in duplicates:
        metrics.NOTIFICATIONS.labels("notify", message.trigger, message.channel, "suppressed").inc()
    await schedule.schedule(conn, plans, now)
    return []


def _signed_up(data: CustomerSignedUp) -> dict[str, Any]:
    return {
        "email": data.email,
        "name": data.name,
        "locale": data.locale,
        "time_zone": data.time_zone,
        "birthday": data.birthday.isoformat() if data.birthday else None,
        "consent_email": data.consent.email,
        "consent_push": data.consent.push,
        "push_subscription": (
            data.push_subscription.model_dump(mode="json") if data.push_subscription else None
        ),
    }


def _updated(data: CustomerUpdated) -> dict[str, Any]:
    fields: dict[str, Any] = {
        name: getattr(data, name)
        for name in ("email", "name", "locale", "time_zone")
        if getattr(data, name) is not None
    }
    if data.birthday is not None:
        fields["birthday"] = data.birthday.isoformat()
    if data.consent is not None:
        fields["consent_email"] = data.consent.email
        fields["consent_push"] = data.consent.push
    if data.push_subscription is not None:
        fields["push_subscription"] = data.push_subscription.model_dump(mode="json")
    return fields


async def on_orders(
    conn: Connection, events: Sequence[Incoming], *, clock: Clock
) -> list[Rejection]:
    """An order cancels the customer's pending cart reminders and feeds win-back."""
    orders = [
        (e.event.data.shop_id, e.event.data.order_id, e.event.data.customer_id, e.event.time)
        for e in events
        if e.event is not None and e.event.type in ORDERED
    ]
    latest = await projections.record_orders(conn, orders)
    now = clock.now()
    keys = {member: cart_cancel_key(member[1]) for member in latest}
    cancelled = await schedule.cancel_for_orders(conn, latest, keys, now)
    await enqueue(
        conn, projections.SCHEMA, [outcomes.suppressed(m, "ordered", now) for m in cancelled]
    )
    for message in cancelled:
        metrics.NOTIFICATIONS.labels("notify", message.trigger, message.channel, "suppressed").inc()
        log.info(
            "notification_cancelled",
            notification_id=message.notification_id,
            customer_id=message.customer_id,
            shop_id=message.shop_id,
            reason="ordered",
        )
    return []


async def on_carts(
    conn: Connection, events: Sequence[Incoming], *, clock: Clock, settings: NotifySettings
) -> list[Rejection]:
    """Cart reminders in the configured steps."""
    carts = [e.event for e in events if e.event is not None]
    with_push = await projections.push_subscribers(
        conn, [(c.data.shop_id, c.data.customer_id) for c in carts]
    )
    steps = [(s.after_minutes, s.coupon) for s in settings.cart_reminder_steps]
    plans: list[PlannedMessage] = []
    for event in carts:
        plans += triggers.cart_reminders(
            event.data,
            at=event.time,
            steps=steps,
            has_push=(event.data.shop_id, event.data.customer_id) in with_push,
        )
    await schedule.schedule(conn, plans, clock.now())
    return []


async def on_points(
    conn: Connection, events: Sequence[Incoming], *, clock: Clock
) -> list[Rejection]:
    """Balances; a daily digest of points earned; a warning before points expire."""
    present = [e.event for e in events if e.event is not None]
    accounts = [(e.data.shop_id, e.data.customer_id) for e in present]
    members = [(triggers.sender_of(e.data), e.data.customer_id) for e in present]
    with_push = await projections.push_subscribers(conn, members)
    earning = [m for m, e in zip(members, present, strict=True) if e.type == "points.earned"]
    zones = await projections.zones_held(conn, earning, clock.now())
    balances: dict[Member, tuple[int, datetime]] = {}
    digests: list[PlannedMessage] = []
    plans: list[PlannedMessage] = []
    for event, account, customer in zip(present, accounts, members, strict=True):
        data = event.data
        has_push = customer in with_push
        if getattr(data, "balance_kind", "points") != "points":
            continue  # store credit: not what points messages speak of
        if event.type == "points.expiring":
            balances[account] = (data.balance, event.time)
            plans += triggers.points_expiring(event.id, data, at=event.time, has_push=has_push)
            continue
        balances[account] = (data.balance_after, event.time)
        if event.type == "points.earned":
            day = digest_day(event.time, zones.get(customer))
            digests += triggers.points_digest(
                *customer, data.delta, at=event.time, local_day=day, has_push=has_push
            )
    await projections.set_balances(conn, balances)
    await schedule.add_to_digest(conn, digests, clock.now())
    await schedule.schedule(conn, plans, clock.now())
    return []


async def on_tiers(
    conn: Connection, events: Sequence[Incoming], *, clock: Clock
) -> list[Rejection]:
    """The tier and its benefits; upgraded, downgraded and at-risk messages."""
    present = [e.event for e in events if e.event is not None]
    with_push = await projections.push_subscribers(
        conn, [(triggers.sender_of(e.data), e.data.customer_id) for e in present]
    )
    tiers: dict[Member, tuple[str, str, list[str], datetime]] = {}
    plans: list[PlannedMessage] = []
    for event in present:
        data = event.data
        has_push = (triggers.sender_of(data), data.customer_id) in with_push
        if event.type == "tier.changed":
            name = data.tier_name or data.to_tier
            tiers[data.shop_id, data.customer_id] = (
                data.to_tier,
                name,
                list(data.benefits),
                data.effective_at,
            )
            plans += triggers.tier_changed(event.id, data, at=event.time, has_push=has_push)
        else:
            plans += triggers.tier_at_risk(event.id, data, at=event.time, has_push=has_push)
    await projections.set_tiers(conn, tiers)
    await schedule.schedule(conn, plans, clock.now())
    return []
