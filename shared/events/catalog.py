"""Which event types travel on which topic; parsing and encoding them as Kafka message bytes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from types import MappingProxyType
from typing import Annotated, Any, Final, Literal, Union, cast
from uuid import uuid4

import jiter
from pydantic import BaseModel, Field, TypeAdapter, ValidationError, create_model
from pydantic_core import ErrorDetails

from shared.errors import Bug, RejectedMessage
from shared.events import console, inputs, outputs, shops
from shared.events.envelope import CloudEvent

__all__ = [
    "TOPICS",
    "encode_event",
    "event_model",
    "make_event",
    "parse_event",
    "parse_record",
    "topic_for",
]


def _frozen(
    table: dict[str, dict[str, type[BaseModel]]],
) -> Mapping[str, Mapping[str, type[BaseModel]]]:
    return MappingProxyType({topic: MappingProxyType(types) for topic, types in table.items()})


TOPICS: Final = _frozen(
    {
        "shop.customers": {
            "customer.signed_up": inputs.CustomerSignedUp,
            "customer.updated": inputs.CustomerUpdated,
        },
        "shop.orders": {
            "order.placed": inputs.OrderPlaced,
            "order.paid": inputs.OrderPaid,
            "order.completed": inputs.OrderCompleted,
            "order.cancelled": inputs.OrderCancelled,
            "order.refunded": inputs.OrderRefunded,
        },
        "shop.carts": {"cart.abandoned": inputs.CartAbandoned},
        "shop.engagement": {
            "review.posted": inputs.ReviewPosted,
            "referral.completed": inputs.ReferralCompleted,
            "social.shared": inputs.SocialShared,
            "newsletter.subscribed": inputs.NewsletterSubscribed,
        },
        "loyalty.points": {
            "points.earned": outputs.PointsEarned,
            "points.reversed": outputs.PointsReversed,
            "points.redeemed": outputs.PointsRedeemed,
            "points.expired": outputs.PointsExpired,
            "points.adjusted": outputs.PointsAdjusted,
            "points.expiring": outputs.PointsExpiring,
        },
        "loyalty.tiers": {
            "tier.changed": outputs.TierChanged,
            "tier.at_risk": outputs.TierAtRisk,
        },
        "loyalty.memberships": {
            "membership.purchased": outputs.MembershipPurchased,
            "membership.cancelled": outputs.MembershipCancelled,
        },
        "loyalty.notifications": {
            "notification.sent": outputs.NotificationSent,
            "notification.failed": outputs.NotificationFailed,
            "notification.suppressed": outputs.NotificationSuppressed,
        },
        "loyalty.shops": {
            "shop.created": shops.ShopCreated,
            "shop.coalition_changed": shops.ShopCoalitionChanged,
            "programme.published": shops.ProgrammePublished,
            "api_key.created": shops.ApiKeyCreated,
            "api_key.revoked": shops.ApiKeyRevoked,
        },
        "loyalty.console": {
            "staff.invited": console.StaffInvited,
            "message.test_requested": console.MessageTestRequested,
        },
    }
)
"""Topic name -> event type -> the data model of that type."""

_TOPIC_OF_TYPE: Final = {type_: topic for topic, types in TOPICS.items() for type_ in types}
_REASON_LIMIT: Final = 500


def topic_for(type: str) -> str:  # noqa: A002 - the CloudEvents attribute is called type
    """The topic an event type travels on; Bug for a type the catalog does not know."""
    try:
        return _TOPIC_OF_TYPE[type]
    except KeyError:
        msg = f"unknown event type {type!r}"
        raise Bug(msg) from None


@cache
def event_model(event_type: str) -> type[CloudEvent[Any]]:
    """`CloudEvent[DataModel]` with `type` pinned to this one value; built once per type."""
    topic = topic_for(event_type)
    data_model = TOPICS[topic][event_type]
    # The pinned literal lets a topic's types form a union that pydantic dispatches on `type`
    # while reading the bytes once; `Literal[...]` of a runtime value needs the subscript form.
    pinned_type = cast(Any, Literal)[event_type]
    base = cast(Any, CloudEvent)[data_model]
    doc = (data_model.__doc__ or "").strip().splitlines()[0]
    model = create_model(
        f"{data_model.__name__}Event",
        __base__=base,
        __module__=__name__,
        __doc__=f"CloudEvent '{event_type}' on topic '{topic}': {doc}",
        type=(pinned_type, ...),
    )
    return cast(type[CloudEvent[Any]], model)


@cache
def _topic_adapter(topic: str) -> TypeAdapter[CloudEvent[Any]]:
    models = tuple(event_model(type_) for type_ in TOPICS[topic])
    if len(models) == 1:
        return TypeAdapter(models[0])
    # A union of classes known only at run time: the subscript form, as with the literal above.
    union: Any = Annotated[cast(Any, Union)[models], Field(discriminator="type")]
    return cast(TypeAdapter[CloudEvent[Any]], TypeAdapter(union))


def parse_event(topic: str, body: bytes) -> CloudEvent[Any]:
    """Validate raw Kafka bytes as one of the topic's events, envelope and data in one pass.

    Raises RejectedMessage: error_class "UnknownTopic", "InvalidJson", "DuplicateKey" or
    "SchemaViolation", with a reason that names fields and rules but never repeats the values
    sent (a repeated key excepted).
    """
    if topic not in TOPICS:
        msg = f"no events are defined for topic {topic!r}"
        raise RejectedMessage(msg, error_class="UnknownTopic")
    _refuse_duplicate_keys(body)
    try:
        return _topic_adapter(topic).validator.validate_json(body)  # type: ignore[no-any-return]
    except ValidationError as exc:
        # Not chained: the ValidationError's text repeats input values, which may be personal data.
        raise _rejection(topic, exc.errors(include_url=False)) from None


def _refuse_duplicate_keys(body: bytes) -> None:
    """A key twice in one object is refused: parsers disagree on which value counts (pydantic
    takes the last, others the first), so the shop and this service could read two orders.

    pydantic-core cannot report duplicates; jiter (the parser inside it) can, at about a fifth
    of the cost of validating the event (5 us of 24 us for an order.paid of 640 bytes).
    """
    try:
        jiter.from_json(body, catch_duplicate_keys=True, cache_mode="keys")
    except ValueError as exc:
        found = _DUPLICATE_KEY.match(str(exc))
        if found is None:  # not JSON: validation says so, in the same words as ever
            return
        # The key is the sender's text: cut short, as it is repeated in the reason.
        msg = f"body repeats the key {found.group(1)[:64]!r} within one object"
        raise RejectedMessage(msg, error_class="DuplicateKey") from None


_DUPLICATE_KEY: Final = re.compile(r'Detected duplicate key "(.*)" at line')


def parse_record(topic: str, key: bytes | None, body: bytes) -> CloudEvent[Any]:
    """parse_event, and the record's Kafka key must be the event's subject (its customer id).

    The key decides the partition, and so the order of one customer's events: a record keyed
    otherwise (or not at all) would be applied out of order with that customer's others.
    Raises RejectedMessage, error_class "KeyMismatch" for the key.
    """
    event = parse_event(topic, body)
    if key is None or key != event.subject.encode():
        what = "has no key" if not key else "is keyed otherwise"
        msg = f"the record {what}: its key must be the event's subject (the customer id)"
        raise RejectedMessage(msg, error_class="KeyMismatch")
    return event


def _rejection(topic: str, errors: list[ErrorDetails]) -> RejectedMessage:
    """The reason names locations and rules; of the input it repeats only an unknown event type."""
    first = errors[0]
    if first["type"] == "json_invalid":
        return RejectedMessage(f"body is not valid JSON: {first['msg']}", error_class="InvalidJson")
    unknown_type = None
    if first["type"] == "union_tag_invalid":
        unknown_type = first.get("ctx", {}).get("tag")
    elif first["type"] == "literal_error" and first["loc"] == ("type",):  # a one-type topic
        unknown_type = first.get("input")
    if unknown_type is not None:
        msg = f"type: unknown event type {str(unknown_type)[:64]!r} for topic {topic!r}"
        return RejectedMessage(msg, error_class="SchemaViolation")
    parts = [f"{_location(topic, error['loc'])}: {_message(error)}" for error in errors]
    reason = f"{len(errors)} invalid field(s): " + "; ".join(parts)
    if len(reason) > _REASON_LIMIT:
        reason = reason[: _REASON_LIMIT - 3] + "..."
    return RejectedMessage(reason, error_class="SchemaViolation")


def _message(error: ErrorDetails) -> str:
    message = error["msg"]
    return message.removeprefix("Value error, ") if error["type"] == "value_error" else message


def _location(topic: str, loc: tuple[int | str, ...]) -> str:
    # Union errors start with the event type that was tried; the reader knows it already.
    if loc and loc[0] in TOPICS[topic]:
        loc = loc[1:]
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text or "event"


def make_event(
    type: str,  # noqa: A002 - the CloudEvents attribute is called type
    *,
    source: str,
    subject: str,
    data: BaseModel,
    id: str | None = None,  # noqa: A002 - the CloudEvents attribute is called id
    time: datetime | None = None,
) -> CloudEvent[Any]:
    """Wrap data in a new event: a fresh uuid4 id and the current UTC time unless given.

    Raises Bug when the data is not the model of that type, and pydantic's ValidationError when a
    value breaks the envelope's rules (a naive time, a subject other than data.customer_id).
    """
    model = event_model(type)
    expected = TOPICS[topic_for(type)][type]
    if data.__class__ is not expected:
        msg = f"{type!r} carries {expected.__name__}, not {data.__class__.__name__}"
        raise Bug(msg)
    return model(
        id=str(uuid4()) if id is None else id,
        source=source,
        type=type,
        time=datetime.now(UTC) if time is None else time,
        subject=subject,
        data=data,
    )


def encode_event(event: CloudEvent[Any]) -> bytes:
    """Compact JSON bytes: decimals as strings, times in RFC 3339 with their zone."""
    return event.__pydantic_serializer__.to_json(event)
