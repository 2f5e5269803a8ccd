"""The CloudEvents 1.0 envelope (structured JSON mode) that carries every event's data."""

from __future__ import annotations

from typing import Annotated, Generic, Literal, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from shared.events.fields import CustomerId, EventId, EventTime, SourceUri

__all__ = ["CloudEvent", "DataT", "EventType"]

DataT = TypeVar("DataT", bound=BaseModel)

EventType = Annotated[
    str,
    StringConstraints(min_length=1, max_length=128, pattern=r"^[!-~]+$"),
    Field(description="What happened, such as 'order.paid'."),
]


class CloudEvent(BaseModel, Generic[DataT]):
    """A CloudEvents 1.0 event in structured JSON mode; `subject` is the customer it is about.

    The Kafka message key is the same customer id, so one customer's events stay in order.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    specversion: Literal["1.0"] = "1.0"
    id: EventId
    source: SourceUri
    type: EventType
    time: EventTime
    subject: Annotated[CustomerId, Field(description="The customer id; also the Kafka key.")]
    datacontenttype: Literal["application/json"] = "application/json"
    data: DataT

    @model_validator(mode="after")
    def _subject_is_the_customer(self) -> Self:
        # The subject decides the partition; data about another customer would be processed out
        # of order with that customer's other events.
        customer_id = getattr(self.data, "customer_id", None)
        if customer_id is not None and customer_id != self.subject:
            msg = "subject must equal data.customer_id"
            raise ValueError(msg)
        return self
