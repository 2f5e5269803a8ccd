"""The committed AsyncAPI documents match what the services declare."""

from __future__ import annotations

import json

from services.asyncapi import DEFAULT_DIR, drift, render


def test_committed_asyncapi_documents_match_the_code() -> None:
    assert drift() == [], "run `.venv/bin/loyalty asyncapi` and commit schemas/asyncapi/"


def test_each_document_names_its_service_and_its_input_and_output_channels() -> None:
    earn = json.loads(render()["earn.json"])
    assert earn["info"]["title"] == "loyalty-earn"
    assert {"earn:shop.orders", "loyalty.points:publish"} <= set(earn["channels"])
    assert (DEFAULT_DIR / "earn.json").exists()
