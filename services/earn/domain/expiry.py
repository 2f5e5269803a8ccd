"""When earned points expire, and how many expire by a date when spending takes the oldest."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from services.earn.domain.calendar import add_months, end_of_period
from services.earn.programme import Expiry


def expires_at_for(expiry: Expiry, earned_at: datetime, zone: ZoneInfo) -> datetime | None:
    """after_months: `months` after earning; end_of_period: the end of the month or year that
    falls `months` after earning, in the shop's time zone; never and inactivity: no date of
    their own (inactivity expires a whole balance after `months` without an order)."""
    if expiry.mode == "after_months":
        return add_months(earned_at, expiry.months)
    if expiry.mode == "end_of_period":
        return end_of_period(
            add_months(earned_at.astimezone(zone), expiry.months), expiry.period, zone
        )
    return None


def due_to_expire(credits_expiring_by: int, consumed: int, expired_before: int) -> int:
    """Points that expire now, spending having taken the oldest points first.

    `credits_expiring_by` is the sum of earnings whose date has passed, `consumed` every point
    taken out so far by anything but expiry (redemptions, reversals, deductions) and
    `expired_before` what expired already: what was consumed is counted against the oldest
    earnings, so only the unspent rest of the expired earnings goes.
    """
    return max(credits_expiring_by - consumed - expired_before, 0)
