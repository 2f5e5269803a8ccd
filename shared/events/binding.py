"""The CloudEvents Kafka protocol binding: records in structured or binary mode, and the header
that marks the records this project publishes as structured.

A record whose `content-type` header starts with `application/cloudevents` is in structured
mode (the body is the whole event); one with a `ce_specversion` header is in binary mode (the
attributes are `ce_*` headers, the body is the event's data, `content-type` is the data's);
one with neither is read as structured JSON, as every producer sent before the binding was
read. A binary record is rebuilt into the structured document it stands for and validated by
the same code, so both modes meet the same rules and are refused with the same reasons.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import jiter
from pydantic_core import to_json

from shared.errors import RejectedMessage
from shared.events.catalog import parse_record
from shared.events.envelope import CloudEvent

__all__ = ["CONTENT_TYPE", "STRUCTURED_CONTENT_TYPE", "STRUCTURED_HEADER", "parse_kafka_record"]

CONTENT_TYPE: Final = "content-type"
STRUCTURED_CONTENT_TYPE: Final = "application/cloudevents+json; charset=UTF-8"
STRUCTURED_HEADER: Final = (CONTENT_TYPE, STRUCTURED_CONTENT_TYPE.encode())
"""The header of every event record the services publish (not of dead letters, which keep the
headers of the record they copy)."""

# The values producers send: known good without parsing them (that costs 2 us a record).
_USUAL_STRUCTURED: Final = frozenset(
    {
        b"application/cloudevents+json",
        STRUCTURED_CONTENT_TYPE.encode(),
        b"application/cloudevents+json; charset=utf-8",
        b"application/cloudevents+json;charset=UTF-8",
        b"application/cloudevents+json;charset=utf-8",
    }
)
_ATTRIBUTE_PREFIX: Final = "ce_"
_SPECVERSION_HEADER: Final = "ce_specversion"
_CLOUDEVENTS: Final = b"application/cloudevents"
_JSON_DATA: Final = "application/json"
_SHOWN: Final = 64  # characters of a sender's header name or value repeated in a reason

Header = tuple[str, bytes]


def parse_kafka_record(
    topic: str, key: bytes | None, value: bytes, headers: Sequence[Header]
) -> CloudEvent[Any]:
    """The event a record carries, in either mode; RejectedMessage when it breaks the contract.

    Besides parse_record's classes: "UnsupportedContentType" (a structured format other than
    JSON, or binary data that is not JSON), "InvalidHeader" (an attribute header that is not
    UTF-8), "DuplicateKey" (an attribute header, or content-type, given twice) and
    "InvalidJson" (binary data that is not JSON).
    """
    if headers:
        binary = False
        for name, raw in headers:
            if name == CONTENT_TYPE and raw.startswith(_CLOUDEVENTS):
                if raw not in _USUAL_STRUCTURED:
                    _check_structured(raw)
                return parse_record(topic, key, value)
            if name == _SPECVERSION_HEADER:
                binary = True
        if binary:
            return parse_record(topic, key, structured_from_binary(value, headers))
    return parse_record(topic, key, value)


def _check_structured(content_type: bytes) -> None:
    media, _, parameters = content_type.decode("latin-1").partition(";")
    if media.strip().lower() != "application/cloudevents+json" or not _utf8(parameters):
        msg = (
            f"content-type {_shown(content_type)!r}: only application/cloudevents+json (UTF-8)"
            " is read in structured mode; batched mode and other formats are not"
        )
        raise RejectedMessage(msg, error_class="UnsupportedContentType")


def structured_from_binary(data: bytes, headers: Sequence[Header]) -> bytes:
    """The structured-mode document of a binary-mode record: its `ce_*` headers as attributes,
    `content-type` as `datacontenttype`, its body as `data` (none when the body is empty)."""
    attributes: dict[str, str] = {}
    content_type: str | None = None
    for name, raw in headers:
        if name.startswith(_ATTRIBUTE_PREFIX):
            attribute = name[len(_ATTRIBUTE_PREFIX) :]
            if attribute in attributes:
                msg = f"the header {_shown(name)!r} is given twice"
                raise RejectedMessage(msg, error_class="DuplicateKey")
            attributes[attribute] = _text(name, raw)
        elif name == CONTENT_TYPE:
            if content_type is not None:
                raise RejectedMessage("content-type is given twice", error_class="DuplicateKey")
            content_type = _text(name, raw)
    if "datacontenttype" in attributes:
        msg = "ce_datacontenttype: in binary mode the data's type is the content-type header"
        raise RejectedMessage(msg, error_class="SchemaViolation")
    if content_type is not None:
        _check_json_data(content_type)
        attributes["datacontenttype"] = _JSON_DATA
    document = to_json(attributes)  # escapes what JSON must; a quarter of json.dumps's cost
    if not data:
        return document
    _check_json(data)
    return document[:-1] + (b',"data":' if attributes else b'"data":') + data + b"}"


def _text(name: str, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        msg = f"the header {_shown(name)!r} is not UTF-8 text"
        raise RejectedMessage(msg, error_class="InvalidHeader") from None


def _check_json_data(content_type: str) -> None:
    media, _, parameters = content_type.partition(";")
    if media.strip().lower() != _JSON_DATA or not _utf8(parameters):
        msg = f"content-type {_shown(content_type)!r}: the data must be application/json (UTF-8)"
        raise RejectedMessage(msg, error_class="UnsupportedContentType")


def _check_json(data: bytes) -> None:
    """The body must be one JSON value before it is set into the document: bytes such as
    `{}, "id": "x"` would otherwise add attributes of their own."""
    try:
        jiter.from_json(data, cache_mode="none")
    except ValueError as exc:
        msg = f"data is not valid JSON: {str(exc)[:200]}"
        raise RejectedMessage(msg, error_class="InvalidJson") from None


def _utf8(parameters: str) -> bool:
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in {
            "utf-8",
            "utf8",
        }:
            return False
    return True


def _shown(text: str | bytes) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return text[:_SHOWN]
