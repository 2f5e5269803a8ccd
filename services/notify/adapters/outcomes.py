"""notification.sent, .failed and .suppressed for the outbox, one per message and outcome."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from services.notify.adapters.schedule import Claimed
from shared.events import (
    NotificationFailed,
    NotificationSent,
    NotificationSuppressed,
    encode_event,
    make_event,
)
from shared.outbox import OutboxMessage

SOURCE = "loyalty/notify"
TOPIC = "loyalty.notifications"


def _common(message: Claimed) -> dict[str, object]:
    return {
        "notification_id": message.notification_id,
        "customer_id": message.customer_id,
        "shop_id": message.shop_id,
        "trigger": message.trigger,
        "channel": message.channel,
        "template": message.template,
    }


def _wrap(kind: str, message: Claimed, data: BaseModel, now: datetime) -> OutboxMessage:
    event = make_event(
        f"notification.{kind}",
        source=SOURCE,
        subject=message.customer_id,
        id=f"notify:{message.message_id}:{kind}",
        time=now,
        data=data,
    )
    return OutboxMessage(TOPIC, message.customer_id.encode(), encode_event(event))


def sent(message: Claimed, now: datetime) -> OutboxMessage:
    return _wrap("sent", message, NotificationSent.model_validate(_common(message)), now)


def failed(message: Claimed, error: str, now: datetime) -> OutboxMessage:
    data = NotificationFailed.model_validate({**_common(message), "error": error[:1000]})
    return _wrap("failed", message, data, now)


def suppressed(message: Claimed, reason: str, now: datetime) -> OutboxMessage:
    data = NotificationSuppressed.model_validate({**_common(message), "reason": reason})
    return _wrap("suppressed", message, data, now)
