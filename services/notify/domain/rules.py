"""Whether a claimed message may go now: consent, orders since, frequency cap, quiet hours."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from services.notify.domain.messages import Category, ChannelName

MAX_RETRY_DELAY = timedelta(hours=6)


@dataclass(frozen=True, slots=True)
class QuietHours:
    """Local hours in which nothing is sent; start == end means none."""

    start: time
    end: time

    def contains(self, local: time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def next_end(self, now: datetime, zone: ZoneInfo) -> datetime:
        """The first moment at or after `now` when the quiet hours in `zone` are over (UTC)."""
        local = now.astimezone(zone)
        candidate = datetime.combine(local.date(), self.end, tzinfo=zone)
        if candidate <= local:
            candidate = datetime.combine(local.date() + timedelta(days=1), self.end, tzinfo=zone)
        return candidate.astimezone(now.tzinfo)


@dataclass(frozen=True, slots=True)
class Situation:
    """What is known of the customer just before sending one message."""

    channel: ChannelName
    category: Category
    known_customer: bool
    consent: bool
    unsubscribed: bool
    has_address: bool
    ordered_since: bool
    sent_in_window: int
    time_zone: str | None


@dataclass(frozen=True, slots=True)
class Send:
    """Send now."""


@dataclass(frozen=True, slots=True)
class Suppress:
    """Do not send, for this reason (a SuppressionReason of the notification events)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Defer:
    """Not now: try again at `until` (quiet hours)."""

    until: datetime


Decision = Send | Suppress | Defer


def decide(
    situation: Situation, *, now: datetime, quiet: QuietHours, cap: int, zone_default: str
) -> Decision:
    """The rules, in order: a cart reminder after an order is void; then consent and address;
    then the cap (marketing only); then quiet hours, which defer and never drop."""
    if situation.ordered_since:
        return Suppress("ordered")
    if not situation.known_customer or not situation.consent:
        return Suppress("unsubscribed" if situation.unsubscribed else "no_consent")
    if not situation.has_address:
        return Suppress("invalid_address")
    if situation.category == "marketing" and situation.sent_in_window >= cap:
        return Suppress("frequency_cap")
    zone = ZoneInfo(situation.time_zone or zone_default)
    if quiet.contains(now.astimezone(zone).time()):
        return Defer(quiet.next_end(now, zone))
    return Send()


def retry_delay(attempts: int, base_s: float) -> timedelta:
    """Exponential backoff after `attempts` failed tries: base, 2x base, 4x base... capped."""
    delay = timedelta(seconds=base_s * 2 ** max(attempts - 1, 0))
    return min(delay, MAX_RETRY_DELAY)
