"""Email over SMTP (aiosmtplib): a small connection pool, TLS modes, one-click unsubscribe."""

from __future__ import annotations

import asyncio
import ssl
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr

import aiosmtplib
import structlog

from services.notify.adapters.channel import Envelope, PermanentDelivery, TransientDelivery
from services.notify.settings import NotifySettings
from shared.clock import Clock

log = structlog.get_logger(__name__)


def message_id_for(scheduled_id: int, mail_from: str) -> str:
    """The same scheduled message always carries the same Message-ID, so a resend after a crash
    can be recognised by mail clients and by anyone reading the logs."""
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "localhost"
    return f"<notify-{scheduled_id}@{domain}>"


def build_email(
    envelope: Envelope, *, mail_from: str, clock: Clock, mailto: str | None
) -> EmailMessage:
    if not envelope.email:
        raise PermanentDelivery("no email address")
    message = EmailMessage()
    message["From"] = mail_from
    message["To"] = formataddr((envelope.name or "", envelope.email))
    message["Subject"] = envelope.rendered.subject
    message["Date"] = format_datetime(clock.now())
    message["Message-ID"] = envelope.message_id
    unsubscribe = f"<{envelope.unsubscribe_url}>"
    if mailto:
        unsubscribe += f", <mailto:{mailto}?subject=unsubscribe>"
    message["List-Unsubscribe"] = unsubscribe
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"  # RFC 8058
    message.set_content(envelope.rendered.text)
    message.add_alternative(envelope.rendered.html, subtype="html")
    message["Content-Language"] = envelope.rendered.language  # set_content drops Content-*
    return message


class SmtpChannel:
    """Sends email through one SMTP server, reusing up to `pool_size` connections."""

    name = "email"

    def __init__(self, settings: NotifySettings, clock: Clock) -> None:
        self._settings = settings
        self._clock = clock
        self._slots = asyncio.Semaphore(settings.smtp_pool_size)
        self._idle: list[aiosmtplib.SMTP] = []

    def can_reach(self, envelope: Envelope) -> bool:
        return bool(envelope.email)

    async def send(self, envelope: Envelope) -> None:
        message = build_email(
            envelope,
            mail_from=self._settings.mail_from,
            clock=self._clock,
            mailto=self._settings.mail_unsubscribe_mailto,
        )
        async with self._slots:
            client = self._idle.pop() if self._idle else None
            try:
                client = await self._deliver(client, message)
            except aiosmtplib.SMTPException as exc:
                raise _classify(exc) from None
            except OSError as exc:
                raise TransientDelivery(f"SMTP server unreachable: {type(exc).__name__}") from None
            self._idle.append(client)

    async def _deliver(
        self, client: aiosmtplib.SMTP | None, message: EmailMessage
    ) -> aiosmtplib.SMTP:
        if client is not None and client.is_connected:
            try:
                await client.send_message(message)
            except aiosmtplib.SMTPServerDisconnected:
                pass  # an idle connection the server closed: one fresh try below
            else:
                return client
        client = self._client()
        await client.connect()
        await client.send_message(message)
        return client

    def _client(self) -> aiosmtplib.SMTP:
        s = self._settings
        context: ssl.SSLContext | None = None
        if s.smtp_tls != "none":
            context = ssl.create_default_context()
            if s.smtp_ca_file is not None:
                context.load_verify_locations(cafile=str(s.smtp_ca_file))
            if not s.smtp_validate_certs:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
        return aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_user,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            use_tls=s.smtp_tls == "tls",
            start_tls=s.smtp_tls == "starttls",
            tls_context=context,
            timeout=s.smtp_timeout_s,
        )

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for client in idle:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()


def _classify(exc: aiosmtplib.SMTPException) -> PermanentDelivery | TransientDelivery:
    """5xx replies about this message are permanent; 4xx, timeouts and disconnects are not."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        if codes and all(code >= 500 for code in codes):
            return PermanentDelivery(f"SMTP recipient refused: {codes[0]}")
        return TransientDelivery(f"SMTP recipient deferred: {codes[0] if codes else '?'}")
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        # The server's credentials are wrong for every message: retry until fixed, fail none.
        return TransientDelivery(f"SMTP authentication failed: {exc.code}")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        kind = PermanentDelivery if exc.code >= 500 else TransientDelivery
        return kind(f"SMTP {exc.code} {type(exc).__name__}")
    return TransientDelivery(f"SMTP server unreachable: {type(exc).__name__}")
