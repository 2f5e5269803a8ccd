"""Email over TLS and with a login, to real SMTP servers as mail providers run them: STARTTLS
required, implicit TLS (SMTPS); a refused login or an untrusted certificate loses no message."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import asyncpg
import pytest
import structlog
import trustme
from aiokafka import AIOKafkaProducer
from faststream.asgi import AsgiFastStream
from notify_support import RunDue, SmtpInbox, notify_customer, signed_up
from prometheus_client import REGISTRY
from pydantic import SecretStr
from support import encoded, eventually

from services.notify.settings import NotifySettings
from shared.runtime import Runtime

# 10:00 in Ho Chi Minh City (UTC+7), outside the quiet hours; before every other notify
# module's times, so a pass at it claims only this module's messages. Each test ends with
# its messages sent, so that no later pass finds one of them.
T0 = datetime(2029, 11, 1, 3, 0, tzinfo=UTC)
LOGIN = ("shop", "pw-Tr0ub4dor")
WRONG_PASSWORD = "pw-not-this-one"


@dataclass(frozen=True)
class Authorities:
    ca: trustme.CA
    ca_file: Path  # signed the servers' certificate
    other_ca_file: Path  # signed nothing the servers show


@pytest.fixture(scope="module")
def authorities(tmp_path_factory: pytest.TempPathFactory) -> Authorities:
    files = tmp_path_factory.mktemp("smtp-ca")
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(files / "ca.pem"))
    trustme.CA().cert_pem.write_to_path(str(files / "other-ca.pem"))
    return Authorities(ca, files / "ca.pem", files / "other-ca.pem")


def provider(authorities: Authorities, tls: Literal["none", "starttls", "tls"]) -> SmtpInbox:
    return SmtpInbox(
        tls=tls, certificate=authorities.ca.issue_cert("127.0.0.1", "localhost"), login=LOGIN
    ).start()


@pytest.fixture(params=["starttls", "tls"])
def tls_inbox(request: pytest.FixtureRequest, authorities: Authorities) -> Iterator[SmtpInbox]:
    """A server that takes mail only over TLS (STARTTLS required, or SMTPS) after a login."""
    inbox = provider(authorities, request.param)
    try:
        yield inbox
    finally:
        inbox.stop()


def over_tls(
    settings: NotifySettings, inbox: SmtpInbox, authorities: Authorities, **changes: Any
) -> NotifySettings:
    """The settings that reach `inbox` as an operator would write them."""
    return settings.model_copy(
        update={
            "smtp_port": inbox.port,
            "smtp_tls": inbox.tls,
            "smtp_user": LOGIN[0],
            "smtp_password": SecretStr(LOGIN[1]),
            "smtp_ca_file": authorities.ca_file,
            **changes,
        }
    )


async def sign_up(producer: AIOKafkaProducer, db: asyncpg.Pool, customer: str) -> None:
    event = signed_up(customer, T0, email=f"{customer}@mail.example")
    await producer.send_and_wait("shop.customers", encoded(event), key=customer.encode())
    await eventually(
        lambda: db.fetch("SELECT 1 FROM notify.scheduled WHERE customer_id = $1", customer),
        lambda rows: len(rows) == 1,
    )


async def state(db: asyncpg.Pool, customer: str) -> tuple[str, int, list[tuple[str, str | None]]]:
    """The message's status and attempts counted, and its delivery log."""
    row = await db.fetchrow(
        "SELECT status, attempts FROM notify.scheduled WHERE customer_id = $1", customer
    )
    assert row is not None
    log = await db.fetch(
        "SELECT outcome, detail FROM notify.delivery_log WHERE customer_id = $1 ORDER BY id",
        customer,
    )
    return row["status"], row["attempts"], [(r["outcome"], r["detail"]) for r in log]


@pytest.fixture
async def customer(
    notify: tuple[AsgiFastStream, Runtime], db: asyncpg.Pool, producer: AIOKafkaProducer
) -> AsyncIterator[str]:
    """A signed-up customer whose welcome email is due at T0."""
    customer = notify_customer()
    await sign_up(producer, db, customer)
    yield customer


async def test_a_server_that_wants_tls_and_a_login_gets_both_and_the_message(
    run_due: RunDue,
    notify_settings: NotifySettings,
    tls_inbox: SmtpInbox,
    authorities: Authorities,
    customer: str,
) -> None:
    outcome = await run_due(
        T0 + timedelta(minutes=1), over_tls(notify_settings, tls_inbox, authorities)
    )

    assert outcome["sent"] == 1
    [captured] = tls_inbox.to(f"{customer}@mail.example")
    assert captured.encrypted
    assert captured.login == LOGIN[0]


async def test_a_refused_login_keeps_every_message_tells_why_once_and_not_the_password(
    run_due: RunDue,
    notify_settings: NotifySettings,
    tls_inbox: SmtpInbox,
    authorities: Authorities,
    db: asyncpg.Pool,
    producer: AIOKafkaProducer,
    customer: str,
) -> None:
    other = notify_customer()
    await sign_up(producer, db, other)
    # One connection, and a single try allowed per message: were the refusals counted, both
    # messages would be failed at the second pass.
    wrong = over_tls(
        notify_settings,
        tls_inbox,
        authorities,
        smtp_password=SecretStr(WRONG_PASSWORD),
        smtp_pool_size=1,
        max_attempts=1,
    )

    with structlog.testing.capture_logs() as logs:
        first = await run_due(T0 + timedelta(minutes=1), wrong)
    logins_tried = len(tls_inbox.login_sessions)
    unavailable = REGISTRY.get_sample_value(
        "loyalty_notification_channel_unavailable", {"service": "notify", "channel": "email"}
    )
    second = await run_due(T0 + timedelta(minutes=3), wrong)
    states = [await state(db, c) for c in (customer, other)]
    fixed = await run_due(
        T0 + timedelta(minutes=5), over_tls(notify_settings, tls_inbox, authorities)
    )

    assert first["retry"] == second["retry"] == 2
    # The second message was held back without a try of the same password.
    assert logins_tried == 1
    refused = "SMTP server refused the login: 535"
    for status, attempts, log in states:
        assert status == "pending"
        assert attempts == 0  # the refusals were not the message's tries
        assert log == [("retry", refused), ("retry", refused)]
    told = [entry for entry in logs if entry["event"] == "smtp_unavailable"]
    assert [(e["log_level"], e["reason"]) for e in told] == [("error", refused)]
    assert WRONG_PASSWORD not in repr(logs)
    assert unavailable == 1  # what the alert watches: retries keep the age gauge low
    assert fixed["sent"] == 2
    assert len(tls_inbox.to(f"{customer}@mail.example")) == 1
    assert len(tls_inbox.to(f"{other}@mail.example")) == 1


async def test_a_server_certificate_not_signed_by_smtp_ca_file_is_refused_and_the_message_kept(
    run_due: RunDue,
    notify_settings: NotifySettings,
    tls_inbox: SmtpInbox,
    authorities: Authorities,
    db: asyncpg.Pool,
    customer: str,
) -> None:
    untrusted = over_tls(
        notify_settings, tls_inbox, authorities, smtp_ca_file=authorities.other_ca_file
    )

    refused = await run_due(T0 + timedelta(minutes=1), untrusted)
    status, attempts, log = await state(db, customer)
    logins_tried = len(tls_inbox.login_sessions)
    trusted = await run_due(
        T0 + timedelta(minutes=3), over_tls(notify_settings, tls_inbox, authorities)
    )

    assert refused["retry"] == 1
    assert (status, attempts) == ("pending", 0)
    [(outcome, detail)] = log
    assert outcome == "retry"
    assert detail is not None
    assert detail.startswith("SMTP server certificate not trusted: ")
    assert logins_tried == 0  # the password never went to the untrusted server
    assert trusted["sent"] == 1
    [captured] = tls_inbox.to(f"{customer}@mail.example")
    assert captured.encrypted


async def test_starttls_asked_of_a_server_without_it_sends_nothing_in_clear(
    run_due: RunDue,
    notify_settings: NotifySettings,
    smtp: SmtpInbox,
    authorities: Authorities,
    db: asyncpg.Pool,
    customer: str,
) -> None:
    wanted = notify_settings.model_copy(
        update={"smtp_tls": "starttls", "smtp_ca_file": authorities.ca_file}
    )

    refused = await run_due(T0 + timedelta(minutes=1), wanted)
    status, attempts, log = await state(db, customer)
    sent = await run_due(T0 + timedelta(minutes=3))  # the session's plain server, as set up

    assert refused["retry"] == 1
    assert (status, attempts) == ("pending", 0)
    assert log == [("retry", "SMTP server does not offer STARTTLS")]
    assert sent["sent"] == 1
    assert len(smtp.to(f"{customer}@mail.example")) == 1


async def test_a_login_in_clear_goes_only_where_the_operator_allowed_it(
    run_due: RunDue,
    notify_settings: NotifySettings,
    authorities: Authorities,
    customer: str,
) -> None:
    relay = provider(authorities, "none")  # a relay that takes a login without TLS
    try:
        allowed = notify_settings.model_copy(
            update={
                "smtp_port": relay.port,
                "smtp_user": LOGIN[0],
                "smtp_password": SecretStr(LOGIN[1]),
                "smtp_allow_plaintext_auth": True,
            }
        )

        outcome = await run_due(T0 + timedelta(minutes=1), allowed)
    finally:
        relay.stop()

    assert outcome["sent"] == 1
    [captured] = relay.to(f"{customer}@mail.example")
    assert captured.login == LOGIN[0]
    assert not captured.encrypted
    with pytest.raises(ValueError, match="password in clear"):
        NotifySettings(**{**allowed.model_dump(), "smtp_allow_plaintext_auth": False})
