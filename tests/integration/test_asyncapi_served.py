"""A running service serves the AsyncAPI document that is committed, and no route of its
documentation publishes to Kafka."""

from __future__ import annotations

import json

from infrastructure import Endpoints
from support import TopicTail, unique
from tiering_tools import TieringService

from services.asyncapi import DEFAULT_DIR


async def test_the_served_document_is_the_committed_one(tiering: TieringService) -> None:
    served = await tiering.api.get("/docs/asyncapi.json")
    assert served.status_code == 200
    assert served.json() == json.loads((DEFAULT_DIR / "tiering.json").read_text())
    page = await tiering.api.get("/docs/asyncapi")
    assert page.status_code == 200
    assert "tiering:shop.orders" in page.text


async def test_the_documentation_offers_no_way_to_publish(
    infrastructure: Endpoints, tiering: TieringService
) -> None:
    customer = unique("try")
    attempt = {
        "channelName": "shop.orders",
        "message": {"message": {"customer": customer}},
        "options": {"sendToRealBroker": True},
    }
    async with TopicTail(infrastructure.kafka_bootstrap, "shop.orders") as tail:
        answer = await tiering.api.post("/docs/asyncapi/try", json=attempt)
        assert answer.status_code in (404, 405), answer.text
        sent = await tail.settle(lambda record: customer.encode() in record.value, seconds=2)
    assert sent == []
