"""Mail to a shop's staff, from loyalty.console: kept by the consumer, sent by the worker.

An invitation to the console (staff.invited) and a test send of a template with sample data
(message.test_requested). Not customers' messages: no consent, frequency cap or quiet hours,
nothing in delivery_log and no loyalty.notifications event; they are counted in the
notifications metric under their own triggers. An invitation's link holds a single-use secret:
it is never logged, and it leaves the row once the mail is sent or given up.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import structlog

from services.notify.adapters import staff_mail
from services.notify.adapters.channel import (
    Channel,
    ChannelUnavailable,
    Envelope,
    PermanentDelivery,
    TransientDelivery,
)
from services.notify.adapters.email import staff_message_id
from services.notify.adapters.staff_mail import ClaimedStaffMail, StaffMail
from services.notify.domain.messages import TEMPLATES
from services.notify.domain.rules import retry_delay
from services.notify.preview import sample_values
from services.notify.rendering import Rendered, TemplateProblem
from services.notify.settings import NotifySettings
from services.notify.shop_messages import ShopMessageSettings
from shared import metrics
from shared.clock import Clock
from shared.consumer import Incoming, Rejection
from shared.db import Connection
from shared.errors import Bug, RejectedMessage
from shared.events.console import MessageTestRequested, StaffInvited
from shared.retry import is_transient

log = structlog.get_logger(__name__)

# The kinds of staff mail, also their trigger in the notifications metric.
INVITATION = "staff_invitation"
TEST_SEND = "test_send"
# Templates of staff mail, shipped in every language, which shops do not override.
STAFF_TEMPLATES = (INVITATION,)
TEST_SUBJECT_PREFIX = "[TEST] "


async def on_console(
    conn: Connection, events: Sequence[Incoming], *, clock: Clock, settings: NotifySettings
) -> list[Rejection]:
    """Keep each staff mail the console asks for, due now; refuse what cannot be sent."""
    mails: list[StaffMail] = []
    refused: list[Rejection] = []
    for incoming in events:
        event = incoming.event
        if event is None:
            continue
        try:
            mails.append(staff_mail_of(event.id, event.data, settings.console_public_url))
        except RejectedMessage as error:
            refused.append(Rejection(incoming, error))
    await staff_mail.add(conn, mails, clock.now())
    return refused


def staff_mail_of(event_id: str, data: object, console_url: str) -> StaffMail:
    """The mail an event of loyalty.console asks for; RejectedMessage when it cannot be sent."""
    if isinstance(data, StaffInvited):
        # A link elsewhere than the console's invitations is not mailed in the console's name.
        link = re.escape(f"{console_url}/invitations/") + r"[A-Za-z0-9_-]{16,512}"
        if re.fullmatch(link, data.accept_url) is None:
            raise RejectedMessage(
                "staff.invited: accept_url does not lead to the console's invitations "
                "(LOYALTY_CONSOLE_PUBLIC_URL)",
                error_class="ForeignInvitationLink",
            )
        payload: dict[str, Any] = {
            "invitation_id": data.invitation_id,
            "shop_name": data.shop_name,
            "invited_by_name": data.invited_by_name,
            "role": data.role,
            "accept_url": data.accept_url,
            "expires_at": data.expires_at.isoformat(),
        }
        return StaffMail(
            event_id, data.shop_id, INVITATION, INVITATION, data.locale, data.email, payload
        )
    if isinstance(data, MessageTestRequested):
        if data.template not in TEMPLATES:
            raise RejectedMessage(
                f"message.test_requested: notify has no template {data.template!r}",
                error_class="UnknownTemplate",
            )
        payload = {"request_id": data.request_id, "requested_by": data.requested_by}
        return StaffMail(
            event_id, data.shop_id, TEST_SEND, data.template, data.locale, data.to_email, payload
        )
    raise Bug(f"no staff mail for {type(data).__name__}")  # the catalog gave another type


@dataclass(frozen=True)
class StaffMailer:
    """Sends due staff mail through the email channel, a few at a time, in order of time."""

    settings: NotifySettings
    shops: ShopMessageSettings
    channel: Channel

    async def run_due(self, pool: asyncpg.Pool, now: datetime) -> Counter[str]:
        """Send everything due at `now` once; outcomes counted as `staff_<outcome>`."""
        settings = self.settings
        outcomes: Counter[str] = Counter()
        while True:
            lease = now + timedelta(seconds=settings.lease_s)
            async with pool.acquire() as conn, conn.transaction():
                claimed = await staff_mail.claim_due(
                    conn, now, lease, settings.worker_batch, settings.staff_mail_scope
                )
            for mail in claimed:
                outcomes[f"staff_{await self._send_alone(pool, mail, now)}"] += 1
            if len(claimed) < settings.worker_batch:
                return outcomes

    async def _send_alone(
        self, pool: asyncpg.Pool, claimed: ClaimedStaffMail, now: datetime
    ) -> str:
        try:
            return await self.send(pool, claimed, now)
        except Exception as exc:
            if is_transient(exc):
                raise  # the database is away: end the pass; the lease brings the row back
            # One mail's bug must not hold up the others: its lease runs out, it is tried
            # again and, after max_attempts, recorded as failed.
            log.exception("staff_mail_crashed", **_fields(claimed))
            return "crashed"

    async def send(self, pool: asyncpg.Pool, claimed: ClaimedStaffMail, now: datetime) -> str:
        """Render, send and record one claimed mail; returns the outcome."""
        if claimed.attempts > self.settings.max_attempts:
            return await self._finish(pool, claimed, "failed", "gave up after repeated tries", now)
        try:
            await self.channel.send(self.envelope(claimed.mail, now))
        except (TemplateProblem, PermanentDelivery) as exc:
            kind = "template: " if isinstance(exc, TemplateProblem) else ""
            return await self._finish(pool, claimed, "failed", f"{kind}{exc}", now)
        except TransientDelivery as exc:
            counted = not isinstance(exc, ChannelUnavailable)
            if counted and claimed.attempts >= self.settings.max_attempts:
                error = f"{exc} (after {claimed.attempts} tries)"
                return await self._finish(pool, claimed, "failed", error, now)
            return await self._retry(pool, claimed, str(exc), now, counted=counted)
        return await self._finish(pool, claimed, "sent", None, now)

    def envelope(self, mail: StaffMail, now: datetime) -> Envelope:
        """The mail as the channel sends it, from the shop's sender, without unsubscribe."""
        shop = self.shops.for_shop(mail.shop_id, now)
        return Envelope(
            message_id=staff_message_id(mail.event_id, shop.mail_from),
            shop_id=mail.shop_id,
            customer_id=None,
            trigger=mail.kind,
            category="transactional",
            rendered=self.render(mail, now),
            email=mail.to_email,
            name=None,
            push_subscription=None,
            unsubscribe_url=None,
            link=self.settings.console_public_url,
            mail_from=shop.mail_from,
        )

    def render(self, mail: StaffMail, now: datetime) -> Rendered:
        """An invitation with its link, or the requested template with sample data, in the
        shop's templates and brand, its subject marked as a test."""
        renderer = self.shops.renderer_for(mail.shop_id, now)
        if mail.kind == INVITATION:
            values = {**mail.payload, "console_url": self.settings.console_public_url}
            return renderer.render(INVITATION, mail.locale, values)
        shop = self.shops.for_shop(mail.shop_id, now)
        sample = {
            **sample_values(mail.template),
            "shop_url": shop.storefront_url,
            "currency": shop.default_currency,
        }
        rendered = renderer.render(mail.template, mail.locale, sample)
        return replace(rendered, subject=TEST_SUBJECT_PREFIX + rendered.subject)

    async def _finish(
        self,
        pool: asyncpg.Pool,
        claimed: ClaimedStaffMail,
        status: str,
        error: str | None,
        now: datetime,
    ) -> str:
        async with pool.acquire() as conn:
            ours = await staff_mail.finish(conn, claimed, status=status, error=error, now=now)
        if not ours:
            log.warning("staff_mail_lease_lost", **_fields(claimed))
            return "lost"
        metrics.NOTIFICATIONS.labels("notify", claimed.mail.kind, "email", status).inc()
        if status == "sent":
            log.info("staff_mail_sent", **_fields(claimed))
        else:
            log.error("staff_mail_failed", error=error, **_fields(claimed))
        return status

    async def _retry(
        self,
        pool: asyncpg.Pool,
        claimed: ClaimedStaffMail,
        error: str,
        now: datetime,
        *,
        counted: bool,
    ) -> str:
        """Again later; a try that is the channel's fault is given back, as for customers."""
        due = now + retry_delay(claimed.attempts if counted else 1, self.settings.retry_base_s)
        async with pool.acquire() as conn:
            await staff_mail.retry(
                conn, claimed, error=error, due_at=due, now=now, give_back_attempt=not counted
            )
        log.warning("staff_mail_retry", error=error, retry_at=due.isoformat(), **_fields(claimed))
        return "retry"


def _fields(claimed: ClaimedStaffMail) -> dict[str, Any]:
    """What a log line says of a staff mail: ids, never the address or the link."""
    mail = claimed.mail
    return {
        "event_id": mail.event_id,
        "shop_id": mail.shop_id,
        "kind": mail.kind,
        "template": mail.template,
        "attempt": claimed.attempts,
    }
