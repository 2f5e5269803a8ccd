"""Which record batch codecs a service can decode, and what readiness says when one is missing."""

from __future__ import annotations

import json

from shared.monitoring import Readiness, missing_codecs


def test_every_kafka_codec_is_installed() -> None:
    assert missing_codecs() == ()


def test_a_codec_without_its_library_is_named() -> None:
    codecs = {"gzip": lambda: True, "zstd": lambda: False}

    assert missing_codecs(codecs) == ("zstd",)


def test_readiness_names_the_codecs_that_cannot_be_decoded() -> None:
    readiness = Readiness(checks={"database": True, "codecs": False}, missing_codecs=("lz4",))

    body = json.loads(readiness.to_json())

    assert not readiness.ready
    assert body["missing_codecs"] == ["lz4"]
