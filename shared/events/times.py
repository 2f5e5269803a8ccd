"""How far ahead of a service's clock an event's time may be."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final

from shared.errors import RejectedMessage
from shared.events.envelope import CloudEvent

__all__ = ["AHEAD_MAX", "ahead_of_clock"]

# Clocks of a shop and of the engine differ by seconds; a day covers any honest skew.
AHEAD_MAX: Final = timedelta(days=1)


def ahead_of_clock(
    event: CloudEvent[Any], now: datetime, allowed: timedelta = AHEAD_MAX
) -> RejectedMessage | None:
    """Why an event dated more than `allowed` after `now` is refused, or None.

    A service that acts on an event's time (a return window from the payment, a rolling year
    to the order) would otherwise hold the event's effect until then, or date it there.
    """
    if event.time - now <= allowed:
        return None
    msg = (
        f"time is {_span(event.time - now)} ahead of this service's clock;"
        f" at most {_span(allowed)} is allowed"
    )
    return RejectedMessage(msg, error_class="TimeAhead")


def _span(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} hours"
