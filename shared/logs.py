"""structlog configured once per process: JSON for machines, console for people."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Literal

import structlog

# Libraries that log through the standard library. FastStream gives its loggers a coloured
# handler of their own and stops them propagating: they are brought back to the one stream.
FOREIGN_LOGGERS = ("faststream", "uvicorn", "aiokafka", "asyncio", "py.warnings")

# Fields that libraries attach to their records (FastStream's message context, the repeat
# count below) and that the rendered line keeps.
_EXTRA_FIELDS = ["topic", "group_id", "message_id", "suppressed_repeats"]

# While a fresh broker elects the coordinator of a new consumer group, every join asks again
# and aiokafka logs each refusal at ERROR: normal for the first minutes of a group's life.
COORDINATOR_NOT_AVAILABLE = "CoordinatorNotAvailable"
COORDINATOR_GRACE_S = 300.0


class RepeatLimiter(logging.Filter):
    """Lets the first record of each message template through, then one per `window_s`
    carrying how many were held back since (`suppressed_repeats`).

    A client reconnecting to a broker that is down logs the same lines many times a second;
    a line a minute says as much.
    """

    def __init__(
        self,
        *,
        window_s: float = 60.0,
        max_keys: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._window_s = window_s
        self._max_keys = max_keys
        self._clock = clock
        # message key -> (time the last record went through, records held back since)
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg))
        now = self._clock()
        seen = self._seen.get(key)
        if seen is not None and now - seen[0] < self._window_s:
            self._seen[key] = (seen[0], seen[1] + 1)
            return False
        if seen is not None and seen[1]:
            record.suppressed_repeats = seen[1]
        if seen is None and len(self._seen) >= self._max_keys:
            self._seen.pop(next(iter(self._seen)))
        self._seen[key] = (now, 0)
        return True


class CoordinatorNotAvailableAtStart(logging.Filter):
    """Logs "group coordinator not available" at INFO during the process's first minutes,
    when a fresh broker is still electing coordinators; at WARNING after, never at ERROR."""

    def __init__(
        self, *, grace_s: float = COORDINATOR_GRACE_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self._clock = clock
        self._until = clock() + grace_s

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING and self._is_coordinator_wait(record):
            level = logging.INFO if self._clock() < self._until else logging.WARNING
            record.levelno, record.levelname = level, logging.getLevelName(level)
        return True

    @staticmethod
    def _is_coordinator_wait(record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[0] is not None:
            return COORDINATOR_NOT_AVAILABLE in record.exc_info[0].__name__
        return COORDINATOR_NOT_AVAILABLE in record.getMessage()


def configure_logging(
    *, fmt: Literal["json", "console"] = "json", level: str = "info", service: str = "loyalty"
) -> None:
    """Route structlog and the standard library (aiokafka, uvicorn, faststream) to one stream."""
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    # JSON carries a traceback as the `exception` field of its line; the console prints it.
    exceptions: list[structlog.types.Processor] = (
        [structlog.processors.format_exc_info] if fmt == "json" else []
    )
    structlog.configure(
        processors=[*shared, *exceptions, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    _route_standard_library(shared, exceptions, renderer, level)
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)


def _route_standard_library(
    shared: list[structlog.types.Processor],
    exceptions: list[structlog.types.Processor],
    renderer: structlog.types.Processor,
    level: str,
) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                *shared,
                structlog.stdlib.add_logger_name,
                structlog.stdlib.ExtraAdder(allow=_EXTRA_FIELDS),
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *exceptions,
                renderer,
            ],
        )
    )
    # The level is settled before repeats are counted: a demoted line is limited as such.
    handler.addFilter(CoordinatorNotAvailableAtStart())
    handler.addFilter(RepeatLimiter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in list(logging.root.manager.loggerDict):
        if name.split(".")[0] in FOREIGN_LOGGERS:
            foreign = logging.getLogger(name)
            foreign.handlers.clear()
            foreign.propagate = True
    # aiokafka is chatty at INFO about every rebalance step; warnings still show.
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught


def _log_uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    """An exception that ends the process is logged as a line like any other."""
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, exc, tb)
        return
    logging.getLogger("loyalty").critical("uncaught_exception", exc_info=(kind, exc, tb))
