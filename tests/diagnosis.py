"""What the services running in the test process were doing: said when a wait runs out.

A test that waits for a service and gives up says only that nothing came. This module keeps
the services that tests started and the last warnings they logged, and sums up their state
on one line (the line a short test summary shows): consumers and their partitions, lag,
batches given back, the outbox relay, and what went wrong most recently.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import MutableMapping
from typing import Any

import structlog

from shared import metrics
from shared.runtime import Runtime

_RUNNING: list[Runtime] = []
_RECENT: deque[str] = deque(maxlen=8)
_LOUD = {"warning", "error", "critical", "exception"}


def started(runtime: Runtime) -> None:
    _RUNNING.append(runtime)
    _watch_logs()


def stopped(runtime: Runtime) -> None:
    if runtime in _RUNNING:
        _RUNNING.remove(runtime)


def _remember(_logger: Any, method: str, event: MutableMapping[str, Any]) -> Any:
    if method in _LOUD:
        details = {k: v for k, v in event.items() if k not in ("event", "timestamp", "level")}
        line = f"{event.get('event')} {details}"
        _RECENT.append(line if len(line) <= 240 else line[:237] + "...")
    return event


def _watch_logs() -> None:
    """Add the remembering step to the processors that services' loggers share (in place:
    loggers already cached keep the same list)."""
    processors = structlog.get_config()["processors"]
    if _remember not in processors:
        processors.insert(min(1, len(processors)), _remember)


def _counted(counter: Any, service: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for metric in counter.collect():
        for sample in metric.samples:
            mine = sample.labels.get("service") == service
            if sample.name.endswith("_total") and mine and sample.value > 0:
                rest = [v for k, v in sorted(sample.labels.items()) if k != "service"]
                found["/".join(rest)] = sample.value
    return found


def _lagging(service: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for metric in metrics.CONSUMER_LAG.collect():
        for sample in metric.samples:
            if sample.labels.get("service") == service and sample.value > 0:
                found[f"{sample.labels['topic']}[{sample.labels['partition']}]"] = sample.value
    return found


def _service(runtime: Runtime) -> str:
    name = runtime.definition.name
    now = time.monotonic()
    consumers = []
    for subscriber in runtime.broker.subscribers:
        topics = ",".join(getattr(subscriber, "topic_names", ["?"]))
        consumer = getattr(subscriber, "consumer", None)
        partitions = "stopped" if consumer is None else f"{len(consumer.assignment())}p"
        consumers.append(f"{topics}:{partitions}")
    idle = {c.topic: round(now - c.last_batch_at) for c in runtime.consumers}
    relay = runtime.relay
    relay_state = (
        "none"
        if relay is None
        else f"{'FAILED' if relay.failed else 'ok'} pass {now - relay.last_pass_at:.1f}s ago"
    )
    dead = [t.get_name() for t in runtime.tasks if t.done()]
    return (
        f"{name}(consumers {' '.join(consumers)}; s since batch {idle}; "
        f"lag {_lagging(name)}; given back {_counted(metrics.BATCHES_FAILED, name)}; "
        f"retried {_counted(metrics.TRANSIENT_FAILURES, name)}; relay {relay_state}"
        f"{'; ended tasks ' + str(dead) if dead else ''})"
    )


def services_state() -> str:
    """One line: each running service's state, then the latest warnings they logged."""
    if not _RUNNING:
        return ""
    services = " | ".join(_service(r) for r in _RUNNING)
    return f" || services: {services} || latest warnings: {list(_RECENT)}"
