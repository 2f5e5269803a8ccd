"""The committed AsyncAPI documents match what the services declare, and the official parser
finds no error in them."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from services.asyncapi import DEFAULT_DIR, drift
from shared.asyncapi import DEAD_LETTER_HEADERS
from shared.consumer import Incoming, Rejection, dead_letter
from shared.errors import RejectedMessage
from shared.events.binding import STRUCTURED_CONTENT_TYPE
from shared.events.catalog import TOPICS

PARSER_DIR = Path(__file__).resolve().parents[2] / "tools" / "asyncapi"
SERVICES = ("analytics", "console", "earn", "notify", "shops", "tiering")


def _parser_diagnostics(*paths: Path) -> dict[str, list[dict[str, Any]]]:
    """File -> the official parser's diagnostics (severity 0 error, 1 warning, 2 info, 3 hint)."""
    node = shutil.which("node")
    assert node is not None, "Node.js 20+ is needed to check the AsyncAPI documents"
    assert (PARSER_DIR / "node_modules" / "@asyncapi" / "parser").is_dir(), (
        "the AsyncAPI parser is not installed: run `make asyncapi-parser`"
    )
    done = subprocess.run(
        [node, str(PARSER_DIR / "validate.mjs"), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.stdout, f"the parser printed nothing; it said: {done.stderr}"
    diagnostics: dict[str, list[dict[str, Any]]] = json.loads(done.stdout)
    return diagnostics


@cache
def _document(service: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((DEFAULT_DIR / f"{service}.json").read_text())
    return document


def _operations(service: str, action: str) -> dict[str, dict[str, Any]]:
    document = _document(service)
    return {
        document["channels"][key]["address"]: operation
        for key, operation in document["operations"].items()
        if operation["action"] == action
    }


def _message(service: str, ref: dict[str, str]) -> dict[str, Any]:
    """The message an operation names, through its channel, from the components."""
    document = _document(service)
    _, _, channel, _, name = ref["$ref"].split("/")
    component = document["channels"][channel]["messages"][name]["$ref"].rsplit("/", 1)[1]
    message: dict[str, Any] = document["components"]["messages"][component]
    return message


def _schema(service: str, ref: dict[str, str]) -> dict[str, Any]:
    name = ref["$ref"].rsplit("/", 1)[1]
    schema: dict[str, Any] = _document(service)["components"]["schemas"][name]
    return schema


def test_committed_asyncapi_documents_match_the_code() -> None:
    assert drift() == [], "run `.venv/bin/loyalty asyncapi` and commit schemas/asyncapi/"


def test_the_official_parser_finds_no_error_and_no_warning_in_the_documents() -> None:
    paths = sorted(DEFAULT_DIR.glob("*.json"))
    assert [p.stem for p in paths] == list(SERVICES)
    diagnostics = _parser_diagnostics(*paths)
    problems = {
        name: [d for d in found if d["severity"] <= 1] for name, found in diagnostics.items()
    }
    assert problems == {str(p): [] for p in paths}


def test_the_parser_check_reports_a_reference_to_nothing(tmp_path: Path) -> None:
    broken = _document("tiering") | {"servers": {}}
    channel = next(iter(broken["channels"].values()))
    broken["channels"] = {"only": channel | {"servers": [{"$ref": "#/servers/development"}]}}
    broken.pop("operations")
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    errors = [d for d in _parser_diagnostics(path)[str(path)] if d["severity"] == 0]
    assert "invalid-ref" in [d["code"] for d in errors]


def test_every_consumed_event_type_is_described_in_structured_and_in_binary_mode() -> None:
    for service in SERVICES:
        for topic, operation in _operations(service, "receive").items():
            messages = [_message(service, ref) for ref in operation["messages"]]
            expected = sorted([*TOPICS[topic], *(f"{t}.binary" for t in TOPICS[topic])])
            assert sorted(m["name"] for m in messages) == expected, (service, topic)
            for message in messages:
                event_type = message["name"].removesuffix(".binary")
                payload = _schema(service, message["payload"])
                if message["name"].endswith(".binary"):
                    assert payload["title"] == TOPICS[topic][event_type].__name__
                    ce_type = message["headers"]["allOf"][1]["properties"]["ce_type"]
                    assert ce_type == {"const": event_type}
                else:
                    assert payload["properties"]["type"]["const"] == event_type
                    assert payload["properties"]["data"]["$ref"].endswith(
                        f"/{TOPICS[topic][event_type].__name__}"
                    )
                key = _schema(service, message["bindings"]["kafka"]["key"])
                # Shop changes are keyed by shop, every other event by customer.
                assert key["title"] == ("ShopKey" if topic == "loyalty.shops" else "CustomerKey")


def test_shop_changes_are_sent_keyed_by_shop() -> None:
    sent = _operations("shops", "send")
    assert list(sent) == ["loyalty.shops"]
    messages = [_message("shops", ref) for ref in sent["loyalty.shops"]["messages"]]
    assert sorted(m["name"] for m in messages) == sorted(TOPICS["loyalty.shops"])
    for message in messages:
        assert message["bindings"]["kafka"]["key"]["$ref"].endswith("/ShopKey")


def test_binary_mode_requires_the_attributes_as_ce_headers() -> None:
    headers = _document("earn")["components"]["schemas"]["BinaryHeaders"]
    assert sorted(headers["required"]) == sorted(
        f"ce_{a}" for a in ("specversion", "id", "type", "source", "time", "subject")
    )
    assert "content-type" in headers["properties"]


def test_sent_events_carry_the_structured_content_type_and_the_customer_key() -> None:
    for service in ("earn", "tiering", "notify"):
        sent = {t: o for t, o in _operations(service, "send").items() if not t.endswith(".dlq")}
        assert sent, service
        for topic, operation in sent.items():
            messages = [_message(service, ref) for ref in operation["messages"]]
            assert sorted(m["name"] for m in messages) == sorted(TOPICS[topic])
            for message in messages:
                headers = _schema(service, message["headers"])
                assert headers["required"] == ["content-type"]
                assert headers["properties"]["content-type"]["const"] == STRUCTURED_CONTENT_TYPE
                assert message["bindings"]["kafka"]["key"]["$ref"].endswith("/CustomerKey")


def test_each_consumed_topic_has_its_dead_letter_topic_described() -> None:
    for service in SERVICES:
        sent = _operations(service, "send")
        for topic in _operations(service, "receive"):
            assert f"{topic}.dlq" in sent, (service, topic)
            (ref,) = sent[f"{topic}.dlq"]["messages"]
            headers = _schema(service, _message(service, ref)["headers"])
            assert sorted(headers["required"]) == sorted(DEAD_LETTER_HEADERS)


def test_the_dead_letter_headers_described_are_those_a_dead_letter_gets() -> None:
    original = (("correlation-id", b"c-1"),)
    incoming = Incoming("shop.orders", 0, 7, b"c-1", b"{", original, None)
    rejection = Rejection(incoming, RejectedMessage("not JSON", error_class="InvalidJson"))
    record = dead_letter(rejection, service="earn", now=datetime(2026, 1, 1, tzinfo=UTC))
    assert [name for name, _ in record.headers[len(original) :]] == list(DEAD_LETTER_HEADERS)


def test_each_document_names_its_service_and_its_input_and_output_channels() -> None:
    earn = _document("earn")
    assert earn["info"]["title"] == "loyalty-earn"
    assert {"earn:shop.orders", "loyalty.points:publish", "shop.orders.dlq:publish"} <= set(
        earn["channels"]
    )
