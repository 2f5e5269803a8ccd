"""What the services' AsyncAPI documents say beyond what FastStream can declare.

FastStream declares the channels and operations (shared.broker); it cannot say what a record
carries besides its body, and the subscribers read raw records, so their payload would be
empty. `complete` describes every message itself: one per event type and CloudEvents mode,
with the event's JSON Schema, the Kafka key and the headers; and the dead-letter topic each
consumed topic has. `CompletedAsyncAPI` serves that document at a running service's
/docs/asyncapi, the same one `loyalty asyncapi` commits.
"""

from __future__ import annotations

import json
from typing import Any, Final, Literal

import yaml
from faststream.specification import AsyncAPI
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from shared.correlation import CORRELATION_HEADER
from shared.events.binding import STRUCTURED_CONTENT_TYPE
from shared.events.catalog import TOPICS, event_model, topic_for

# CloudEvents binary mode (Kafka protocol binding): header -> attribute of the envelope.
BINARY_HEADERS: Final = {
    "ce_specversion": "specversion",
    "ce_id": "id",
    "ce_type": "type",
    "ce_source": "source",
    "ce_time": "time",
    "ce_subject": "subject",
}

# What shared.consumer.dead_letter adds to a rejected record's own headers.
DEAD_LETTER_HEADERS: Final = {
    "x-dlq-error-class": "Why, in one word: SchemaViolation, InvalidJson, KeyMismatch, ...",
    "x-dlq-error-message": "Why, in a sentence that names fields and rules (at most 1000 chars).",
    "x-dlq-service": "The service that refused the record.",
    "x-dlq-time": "When it was refused (ISO 8601, UTC).",
    "x-dlq-topic": "The topic the record was read from.",
    "x-dlq-partition": "Its partition there.",
    "x-dlq-offset": "Its offset there.",
}

_BINDING_VERSION: Final = "0.5.0"
# Keyed by shop, not by customer: a shop's changes stay in order.
SHOPS_TOPIC: Final = "loyalty.shops"

Mode = Literal["validation", "serialization"]


class CompletedAsyncAPI(AsyncAPI):
    """FastStream's AsyncAPI factory, giving the completed document."""

    def to_specification(self) -> _Completed:
        return _Completed(complete(super().to_specification().to_jsonable()))


class _Completed:
    """A finished document, in the form FastStream's documentation routes serve."""

    def __init__(self, document: dict[str, Any]) -> None:
        self._document = document

    @property
    def title(self) -> str:
        return str(self._document["info"]["title"])

    def to_jsonable(self) -> dict[str, Any]:
        return self._document

    def to_json(self) -> str:
        return json.dumps(self._document, ensure_ascii=False)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self._document, allow_unicode=True, sort_keys=False)


def complete(spec: dict[str, Any]) -> dict[str, Any]:
    """FastStream's document with every message described, and no server.

    The server is wherever the document was generated (LOYALTY_KAFKA_BOOTSTRAP_SERVERS), not
    part of the API: a channel that names no server is on every server of a deployment.
    """
    spec.pop("servers", None)
    channels: dict[str, Any] = spec["channels"]
    operations: dict[str, Any] = spec["operations"]
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {"CustomerKey": _customer_key()}
    models: list[tuple[type[BaseModel], Mode]] = []
    for key, operation in sorted(operations.items()):
        channel = channels[key]
        channel.pop("servers", None)
        topic = channel["address"]
        if operation["action"] == "receive":
            channel_messages = _received(topic)
            models += [(event_model(t), "validation") for t in TOPICS[topic]]
            schemas |= {"StructuredHeaders": _structured_headers(), "BinaryHeaders": _binary()}
            dead_letters = f"{topic}.dlq:publish"
            channels[dead_letters] = _dead_letter_channel(topic)
            operations[dead_letters] = _operation("send", dead_letters, [f"{topic}.dlq"])
            messages[f"{topic}.dlq"] = _dead_letter_message(topic)
            schemas["DeadLetterHeaders"] = _dead_letter_headers()
        else:
            channel_messages = _sent(topic)
            models += [(event_model(t), "serialization") for t in TOPICS[topic]]
            schemas["EventHeaders"] = _event_headers()
        if topic == SHOPS_TOPIC:  # received (by every service) or sent (by shops)
            schemas["ShopKey"] = _shop_key()
        messages.update(channel_messages)
        channel["messages"] = {
            name: {"$ref": f"#/components/messages/{name}"} for name in channel_messages
        }
        operations[key] = _operation(operation["action"], key, list(channel_messages))
    spec["components"] = {
        "correlationIds": {"correlation": _correlation_id()},
        "messages": messages,
        "schemas": _event_schemas(models) | schemas,
    }
    return spec


def _operation(action: str, channel: str, messages: list[str]) -> dict[str, Any]:
    return {
        "action": action,
        "channel": {"$ref": f"#/channels/{channel}"},
        "messages": [{"$ref": f"#/channels/{channel}/messages/{m}"} for m in messages],
    }


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _event_message(event_type: str, **fields: Any) -> dict[str, Any]:
    return {
        "name": event_type,
        "title": event_type,
        "summary": _summary(event_model(event_type)),
        "contentType": "application/cloudevents+json",
        "payload": _ref(event_model(event_type).__name__),
        "correlationId": {"$ref": "#/components/correlationIds/correlation"},
        "bindings": {
            "kafka": {"key": _ref(_key_of(event_type)), "bindingVersion": _BINDING_VERSION}
        },
        **fields,
    }


def _key_of(event_type: str) -> str:
    return "ShopKey" if topic_for(event_type) == SHOPS_TOPIC else "CustomerKey"


def _shop_key() -> dict[str, Any]:
    return _customer_key() | {
        "title": "ShopKey",
        "description": (
            "The shop id (\"platform\" for a platform operator's key), equal to the event's "
            "subject: one shop's changes share a partition and stay in order."
        ),
    }


def _received(topic: str) -> dict[str, Any]:
    """Each event type of the topic, in structured mode and in binary mode."""
    messages = {}
    for event_type in sorted(TOPICS[topic]):
        messages[event_type] = _event_message(
            event_type,
            title=f"{event_type} (structured mode)",
            description=(
                "The CloudEvent as the JSON body. A record whose content-type header is not "
                "application/cloudevents+json, and that carries ce_specversion, is read in "
                "binary mode instead."
            ),
            headers=_ref("StructuredHeaders"),
        )
        only_this_type = {"properties": {"ce_type": {"const": event_type}}}
        messages[f"{event_type}.binary"] = _event_message(
            event_type,
            name=f"{event_type}.binary",
            title=f"{event_type} (binary mode)",
            description=(
                "The event's attributes as ce_* headers and its data alone as the JSON body "
                "(CloudEvents Kafka protocol binding, binary mode)."
            ),
            contentType="application/json",
            headers={"allOf": [_ref("BinaryHeaders"), only_this_type]},
            payload=_ref(TOPICS[topic][event_type].__name__),
        )
    return messages


def _sent(topic: str) -> dict[str, Any]:
    """Each event type of the topic, as the outbox relay sends it: structured mode."""
    return {
        event_type: _event_message(event_type, headers=_ref("EventHeaders"))
        for event_type in sorted(TOPICS[topic])
    }


def _dead_letter_channel(topic: str) -> dict[str, Any]:
    return {
        "address": f"{topic}.dlq",
        "bindings": {"kafka": {"bindingVersion": "0.4.0", "topic": f"{topic}.dlq"}},
        "description": (
            f"Records of {topic} this service refused, through the outbox; "
            "`loyalty dlq` lists, inspects and replays them."
        ),
        "messages": {f"{topic}.dlq": {"$ref": f"#/components/messages/{topic}.dlq"}},
    }


def _dead_letter_message(topic: str) -> dict[str, Any]:
    return {
        "name": f"{topic}.dlq",
        "title": f"A refused record of {topic}",
        "summary": "The refused record's key, body and headers, plus why, where and when.",
        "description": (
            "The body is the original bytes, which may be neither JSON nor a CloudEvent; the "
            "key is the original key, or none."
        ),
        "contentType": "application/octet-stream",
        "headers": _ref("DeadLetterHeaders"),
        "payload": {"description": "The refused record's body, byte for byte."},
        "bindings": {
            "kafka": {
                "key": {"description": "The refused record's key, byte for byte, or none."},
                "bindingVersion": _BINDING_VERSION,
            }
        },
    }


def _headers(
    title: str, description: str, properties: dict[str, Any], *, required: tuple[str, ...]
) -> dict[str, Any]:
    # Headers not named here are allowed: Kafka tooling adds its own.
    schema: dict[str, Any] = {
        "title": title,
        "description": description,
        "type": "object",
        "properties": properties,
    }
    if required:
        schema["required"] = list(required)
    return schema


def _structured_headers() -> dict[str, Any]:
    content_type = {
        "type": "string",
        "pattern": "^application/cloudevents\\+json",
        "description": (
            f"Structured mode; the services send {STRUCTURED_CONTENT_TYPE}. "
            "A record without content-type is read in structured mode too."
        ),
    }
    return _headers(
        "StructuredHeaders",
        "The headers of a record received in CloudEvents structured mode.",
        {"content-type": content_type, CORRELATION_HEADER: _correlation()},
        required=(),
    )


def _binary() -> dict[str, Any]:
    """The ce_* headers, each with the rules of the envelope attribute it carries."""
    envelope = event_model(next(iter(TOPICS["shop.orders"])))
    attributes = envelope.model_json_schema(mode="validation")["properties"]
    properties = {}
    for header, attribute in BINARY_HEADERS.items():
        rules = {k: v for k, v in attributes[attribute].items() if k not in {"title", "default"}}
        if attribute == "type":
            rules = {"type": "string", "description": "The event type."}
        text = f"The CloudEvents attribute {attribute}."
        properties[header] = rules | {
            "description": f"{text} {rules.get('description', '')}".strip()
        }
    properties["content-type"] = {
        "type": "string",
        "pattern": "^application/json",
        "description": "The content type of the data (the body); JSON when absent.",
    }
    properties[CORRELATION_HEADER] = _correlation()
    return _headers(
        "BinaryHeaders",
        "The headers of a record received in CloudEvents binary mode.",
        properties,
        required=tuple(BINARY_HEADERS),
    )


def _event_headers() -> dict[str, Any]:
    content_type = {"type": "string", "const": STRUCTURED_CONTENT_TYPE}
    return _headers(
        "EventHeaders",
        "The headers of every event the services send (CloudEvents structured mode).",
        {"content-type": content_type, CORRELATION_HEADER: _correlation()},
        required=("content-type",),
    )


def _dead_letter_headers() -> dict[str, Any]:
    return _headers(
        "DeadLetterHeaders",
        "The refused record's own headers, followed by these.",
        {
            name: {"type": "string", "description": text}
            for name, text in DEAD_LETTER_HEADERS.items()
        },
        required=tuple(DEAD_LETTER_HEADERS),
    )


def _correlation() -> dict[str, Any]:
    return {"type": "string", "description": "The id of the input that started this chain."}


def _correlation_id() -> dict[str, Any]:
    return {
        "location": f"$message.header#/{CORRELATION_HEADER}",
        "description": (
            "Set by an upstream, or else the id of the event that started the chain; "
            "every event a service emits because of an input inherits it."
        ),
    }


def _summary(model: type[BaseModel]) -> str:
    return (model.__doc__ or "").strip().splitlines()[0]


def _customer_key() -> dict[str, Any]:
    envelope = event_model(next(iter(TOPICS["shop.orders"])))
    subject = envelope.model_json_schema()["properties"]["subject"]
    return {k: v for k, v in subject.items() if k not in {"title", "description"}} | {
        "title": "CustomerKey",
        "description": (
            "The customer id, equal to the event's subject: one customer's events share a "
            "partition and stay in order. A record keyed otherwise goes to the dead letters."
        ),
    }


def _event_schemas(models: list[tuple[type[BaseModel], Mode]]) -> dict[str, Any]:
    """The JSON Schemas of the events, their data and their parts."""
    unique = sorted(set(models), key=lambda pair: (pair[0].__name__, pair[1]))
    _, definitions = models_json_schema(unique, ref_template="#/components/schemas/{model}")
    schemas: dict[str, Any] = definitions.get("$defs", {})
    return schemas
