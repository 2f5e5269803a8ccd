"""Correlation ids: the id of the input event that started a chain, carried as a Kafka header."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import Any

Header = tuple[str, bytes]

# The CloudEvents envelope forbids extra attributes, so the id travels beside it, as a header.
CORRELATION_HEADER = "correlation-id"

# While a batch is applied: input event id -> the correlation id of its chain.
_causes: ContextVar[Mapping[str, str] | None] = ContextVar("loyalty_causes", default=None)


def header_value(headers: tuple[Header, ...], name: str) -> str | None:
    """The first header called `name`, decoded; None when absent or not UTF-8."""
    for key, value in headers:
        if key == name:
            try:
                return value.decode()
            except UnicodeDecodeError:
                return None
    return None


def correlation_of(headers: tuple[Header, ...], event_id: str) -> str:
    """An input's correlation id: the header when an upstream set one, else its own event id."""
    return header_value(headers, CORRELATION_HEADER) or event_id


@contextlib.contextmanager
def causes(mapping: Mapping[str, str]) -> Iterator[None]:
    """Make the correlation ids of a batch's inputs known to the outbox writes it causes."""
    token = _causes.set(mapping)
    try:
        yield
    finally:
        _causes.reset(token)


def inherited_header(
    topic: str, value: bytes, headers: tuple[Header, ...], *, cause: str | None = None
) -> Header | None:
    """The correlation header an outgoing record inherits from its cause, if it has none yet.

    The cause is the input given as `cause`, or else named by the event's
    `data.source_event_id` (as points entries name it); dead letters keep exactly their
    original headers, so they inherit nothing.
    """
    mapping = _causes.get()
    if not mapping or topic.endswith(".dlq"):
        return None
    if any(key == CORRELATION_HEADER for key, _ in headers):
        return None
    cause = cause if cause is not None else _source_event_id(value)
    correlation = mapping.get(cause) if cause is not None else None
    return (CORRELATION_HEADER, correlation.encode()) if correlation is not None else None


def _source_event_id(value: bytes) -> str | None:
    try:
        document: Any = json.loads(value)
    except ValueError:
        return None
    data = document.get("data") if isinstance(document, dict) else None
    cause = data.get("source_event_id") if isinstance(data, dict) else None
    return cause if isinstance(cause, str) else None
