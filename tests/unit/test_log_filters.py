"""The filters on library log records: repeats held back and counted, the coordinator wait of a
fresh broker below ERROR."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import structlog

from shared.logs import CoordinatorNotAvailableAtStart, RepeatLimiter, configure_logging


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def record(msg: str, *args: object, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord("aiokafka.conn", level, __file__, 1, msg, args, None)


def test_a_repeated_message_passes_once_a_window_with_the_count_held_back() -> None:
    clock = Clock()
    limiter = RepeatLimiter(window_s=60, clock=clock)
    template = "Unable connect to node with id %s: %s"

    passed = []
    for i in range(1600):
        clock.now = i * 50 / 1600  # 1,600 lines in 50 s, as a broker outage produced
        passed.append(limiter.filter(record(template, i % 3, "refused")))
    clock.now = 61.0
    later = record(template, 1, "refused")

    assert passed.count(True) == 1
    assert limiter.filter(later)
    assert later.suppressed_repeats == 1599  # type: ignore[attr-defined]


def test_different_messages_are_limited_apart() -> None:
    limiter = RepeatLimiter(window_s=60, clock=Clock())

    assert limiter.filter(record("first %s", 1))
    assert limiter.filter(record("second %s", 1))
    assert limiter.filter(record("first %s", 1, level=logging.WARNING))


def test_coordinator_not_available_is_info_at_start_and_warning_after() -> None:
    clock = Clock()
    demote = CoordinatorNotAvailableAtStart(grace_s=300, clock=clock)
    message = "Group Coordinator Request failed: %s"
    error = "[Error 15] GroupCoordinatorNotAvailableError: loyalty-earn.shop.orders"

    early = record(message, error)
    demote.filter(early)
    clock.now = 301.0
    late = record(message, error)
    demote.filter(late)
    other = record("Heartbeat failed: %r", "boom")
    demote.filter(other)

    assert (early.levelno, early.levelname) == (logging.INFO, "INFO")
    assert late.levelname == "WARNING"
    assert other.levelname == "ERROR"


def test_a_library_traceback_is_a_field_of_one_json_line(capsys: Any) -> None:
    root = logging.getLogger()
    handlers, level, hook = root.handlers[:], root.level, sys.excepthook
    faststream = logging.getLogger("faststream")
    faststream_handlers, faststream_propagates = faststream.handlers[:], faststream.propagate
    try:
        configure_logging(fmt="json", service="unit")
        faststream.error("Kafka error occurred", exc_info=ValueError("boom"))
        lines = capsys.readouterr().err.splitlines()
    finally:
        root.handlers[:], sys.excepthook = handlers, hook
        root.setLevel(level)
        faststream.handlers[:], faststream.propagate = faststream_handlers, faststream_propagates
        logging.captureWarnings(False)
        structlog.reset_defaults()

    assert len(lines) == 1
    line = json.loads(lines[0])
    assert line["event"] == "Kafka error occurred"
    assert line["level"] == "error"
    assert line["logger"] == "faststream"
    assert "ValueError: boom" in line["exception"]
