"""Logging a failure that repeats itself once per window, with its traceback the first time."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

# How long identical failures are counted instead of logged.
WINDOW_S = 60.0


@dataclass
class _Seen:
    since: float
    suppressed: int = 0


class FailureLog:
    """One structured event per failure; the same failure again within `window_s` is only
    counted, and the next event logged for it says how many were not (`suppressed`).

    Failures are the same when their type, their message and the event name are: a batch that
    fails the same way on every attempt logs once a minute, not once per attempt.
    """

    def __init__(
        self, *, window_s: float = WINDOW_S, now: Callable[[], float] = time.monotonic
    ) -> None:
        self._window_s = window_s
        self._now = now
        self._seen: dict[tuple[str, str, str], _Seen] = {}

    def log(
        self,
        logger: structlog.typing.FilteringBoundLogger,
        level: str,
        event: str,
        exc: BaseException,
        **fields: object,
    ) -> bool:
        """Log `event` about `exc` unless the same was logged within the window; returns
        whether it was logged."""
        key = (event, type(exc).__name__, str(exc)[:500])
        at = self._now()
        seen = self._seen.get(key)
        if seen is not None and at - seen.since < self._window_s:
            seen.suppressed += 1
            return False
        if len(self._seen) > 1000:  # forget the old ones rather than grow without end
            self._seen = {k: s for k, s in self._seen.items() if at - s.since < self._window_s}
        repeats = {"suppressed": seen.suppressed} if seen is not None else {}
        self._seen[key] = _Seen(at)
        getattr(logger, level)(
            event,
            error_class=type(exc).__name__,
            error=str(exc)[:500],
            sqlstate=getattr(exc, "sqlstate", None),
            # The traceback only when this failure is new: a repeat's is the same.
            exc_info=exc if seen is None else None,
            **repeats,
            **fields,
        )
        return True
