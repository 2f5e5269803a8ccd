"""The demo keeps its emails itself only where nothing else would take them."""

from __future__ import annotations

import smtplib
import socket
from pathlib import Path

import pytest

from services.demo import _mail_sink
from services.notify.settings import NotifySettings


def test_no_sink_when_a_server_answers_on_notifys_smtp_address() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert _mail_sink(NotifySettings(smtp_host="127.0.0.1", smtp_port=port)) is None


def test_no_sink_for_a_mail_server_elsewhere() -> None:
    assert _mail_sink(NotifySettings(smtp_host="mail.example.com", smtp_port=25)) is None


def test_a_sink_on_a_free_local_address_keeps_what_it_accepts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("LOYALTY_DEMO_MAIL_DIR", str(tmp_path / "mail"))
    sink = _mail_sink(NotifySettings(smtp_host="127.0.0.1", smtp_port=port))
    assert sink is not None
    try:
        with smtplib.SMTP("127.0.0.1", port) as client:
            client.sendmail("a@example.com", ["b@example.com"], b"Subject: hi\r\n\r\nhello\r\n")
    finally:
        sink.stop()
    assert sink.count() == 1
    [message] = (tmp_path / "mail" / "new").iterdir()
    assert b"hello" in message.read_bytes()
