"""Email over SMTP (aiosmtplib): a small connection pool, TLS modes, one-click unsubscribe."""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import time
import uuid
from dataclasses import dataclass
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import format_datetime, formataddr, parseaddr

import aiosmtplib
import email_validator
import idna
import structlog

from services.notify.adapters.channel import (
    ChannelUnavailable,
    Envelope,
    PermanentDelivery,
    TransientDelivery,
)
from services.notify.settings import NotifySettings
from shared import metrics
from shared.clock import Clock

log = structlog.get_logger(__name__)

_CLOSING = 421  # "service not available, closing transmission channel"

# After the server refused the login or was not trusted, the messages of the next seconds are
# put back without connecting: a pass over many messages would otherwise try the same wrong
# password once for each, which providers answer by locking the account.
UNAVAILABLE_HOLD_S = 30.0


def message_id_for(message_id: uuid.UUID, mail_from: str) -> str:
    """The same scheduled message always carries the same Message-ID, so a resend after a crash
    can be recognised by mail clients and by anyone reading the logs; from the message's UUID,
    so that it stays unique (RFC 5322 3.6.4) when notify's database is recreated."""
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "localhost"
    return f"<notify-{message_id}@{domain}>"


def staff_message_id(event_id: str, mail_from: str) -> str:
    """Staff mail's Message-ID, from the console event's id: a redelivered event, or a send
    tried again after a crash, carries the same one. Hashed, as an event id may hold any
    character."""
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "localhost"
    digest = hashlib.sha256(event_id.encode()).hexdigest()[:32]
    return f"<notify-staff-{digest}@{domain}>"


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    """A message as it goes over SMTP: envelope sender, recipient and the message's bytes."""

    sender: str
    recipient: str
    content: bytes


def build_email(
    envelope: Envelope, *, mail_from: str, clock: Clock, mailto: str | None
) -> OutgoingEmail:
    """A multipart/alternative message (text, then HTML) with one-click unsubscribe when the
    envelope has an unsubscribe link.

    Built with the email package's MIME classes and its RFC 2047 header encoding, at a third
    of the cost per message of `EmailMessage`, whose header registry parses every header.
    """
    if not envelope.email:
        raise PermanentDelivery("no email address")
    recipient = ascii_address(envelope.email)
    from_name, sender = parseaddr(mail_from)
    sender = ascii_address(sender)
    headers = {"Date": format_datetime(clock.now()), "Message-ID": envelope.message_id}
    if envelope.unsubscribe_url is not None:
        unsubscribe = f"<{envelope.unsubscribe_url}>"
        if mailto:
            unsubscribe += f", <mailto:{mailto}?subject=unsubscribe>"
        headers["List-Unsubscribe"] = unsubscribe
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"  # RFC 8058
    headers["Content-Language"] = envelope.rendered.language
    for name, value in headers.items():
        if "\r" in value or "\n" in value:
            raise PermanentDelivery(f"a line break in the {name} header")
    # Customer data and rendered text: a stray line break must not start a header of its own.
    subject = _one_line(envelope.rendered.subject)
    # 96 random bits; "=_" cannot occur in the base64 parts. Short enough for a 78-column line.
    message = MIMEMultipart("alternative", boundary=f"=_{uuid.uuid4().hex[:24]}")
    message["From"] = _mailbox("From", _one_line(from_name), sender)
    message["To"] = _mailbox("To", _one_line(envelope.name or ""), recipient)
    message["Subject"] = _folded("Subject", subject)
    for header, value in headers.items():
        message[header] = value
    message.attach(MIMEText(envelope.rendered.text, "plain", "utf-8"))
    message.attach(MIMEText(envelope.rendered.html, "html", "utf-8"))
    return OutgoingEmail(sender, recipient, message.as_bytes(policy=_HEADERS_UNFOLDED))


# Headers stay on one line up to RFC 5322's limit: folding would move a long URL (say in
# List-Unsubscribe) onto a line of its own. Subjects and names are folded as they are made.
_HEADERS_UNFOLDED = compat32.clone(max_line_length=998)
# RFC 5322 wants lines of at most 78 characters, RFC 2047 encoded words of at most 75. The
# email package's Header folds to `maxlinelen` counting the header's name on the first line;
# at 76 a continuation line (a space and one word) leaves each word 75. (The modern policies'
# folder is no help: it makes 76- and 77-character words and splits a character between two.)
_FOLD_AT = 76
_LINE_MAX = 78


def _folded(header: str, text: str) -> str:
    """Text on lines of at most 78 characters: as it is when it fits, else folded at spaces if
    ASCII and that suffices, else as RFC 2047 encoded words in UTF-8 (each a whole number of
    characters, so a reader joins them back to the exact text)."""
    if text.isascii():
        if len(header) + 2 + len(text) <= _LINE_MAX:
            return text
        folded = Header(text, "us-ascii", maxlinelen=_LINE_MAX, header_name=header).encode(
            linesep="\n"
        )
        if max(len(line) for line in f"{header}: {folded}".split("\n")) <= _LINE_MAX:
            return folded
    return Header(text, "utf-8", maxlinelen=_FOLD_AT, header_name=header).encode(linesep="\n")


def _mailbox(header: str, name: str, address: str) -> str:
    """`name <address>`: an ASCII name quoted as needed when it fits on the line; any other
    name as encoded words, so that no word is longer than 75 characters nor any line than 78."""
    if name.isascii():
        plain = formataddr((name, address))
        if len(header) + 2 + len(plain) <= _LINE_MAX:
            return plain
    if not name:
        return address
    words = Header(name, "utf-8", maxlinelen=_FOLD_AT, header_name=header).encode(linesep="\n")
    last = words.rpartition("\n")[2] if "\n" in words else f"{header}: {words}"
    fits = len(last) + len(address) + 3 <= _LINE_MAX
    return f"{words}{' ' if fits else chr(10) + ' '}<{address}>"


def ascii_address(address: str) -> str:
    """The address with an internationalised domain in its ASCII form, which every SMTP server
    takes; a local part that is not ASCII would need SMTPUTF8, which is not supported.

    The domain is mapped by UTS 46 and encoded by IDNA 2008, as registries and browsers do:
    the stdlib's IDNA 2003 codec maps `straße.de` to `strasse.de`, another domain.
    """
    if "\r" in address or "\n" in address:  # it would end the SMTP command and the header
        raise PermanentDelivery("a line break in the address")
    local, _, domain = address.rpartition("@")
    if not local.isascii():
        raise PermanentDelivery("the address's local part is not ASCII (SMTPUTF8 is not supported)")
    if domain.isascii():
        return address
    try:
        ascii_domain = idna.encode(domain, uts46=True, transitional=False).decode("ascii")
    except UnicodeError:  # idna.IDNAError is one
        raise PermanentDelivery("the address's domain is not a valid domain name") from None
    return f"{local}@{ascii_domain}"


def deliverable(address: str) -> bool:
    """Whether mail to this address can reach anyone: the contract takes any valid address,
    but a special-use domain (RFC 6761: example.test, shop.invalid, localhost) receives none."""
    try:
        email_validator.validate_email(address, check_deliverability=False)
    except email_validator.EmailNotValidError:
        return False
    return True


def _one_line(value: str) -> str:
    return " ".join(value.split()) if "\r" in value or "\n" in value else value


class SmtpChannel:
    """Sends email through one SMTP server, reusing up to `pool_size` connections."""

    name = "email"

    def __init__(self, settings: NotifySettings, clock: Clock) -> None:
        self._settings = settings
        self._clock = clock
        self._slots = asyncio.Semaphore(settings.smtp_pool_size)
        self._idle: list[aiosmtplib.SMTP] = []
        # Why the server cannot be used, and until when (monotonic) not to try it again.
        self._unavailable: str | None = None
        self._hold_until = 0.0

    def can_reach(self, envelope: Envelope) -> bool:
        return bool(envelope.email)

    async def send(self, envelope: Envelope) -> None:
        message = build_email(
            envelope,
            mail_from=envelope.mail_from,
            clock=self._clock,
            mailto=self._settings.mail_unsubscribe_mailto,
        )
        try:
            await self._send_pooled(message)
        except ChannelUnavailable as exc:
            now = time.monotonic()
            if self._unavailable == str(exc) and now < self._hold_until:
                raise  # held back, or failed alike while held: the hold is not prolonged
            if self._unavailable != str(exc):  # once per cause, not once per message
                log.error(  # noqa: TRY400 - the reason says it all; a traceback adds nothing
                    "smtp_unavailable", reason=str(exc), host=self._settings.smtp_host
                )
            self._unavailable, self._hold_until = str(exc), now + UNAVAILABLE_HOLD_S
            # Retries move each message's due time on, so the scheduler's age gauge stays
            # low: this is what tells monitoring that nothing goes out.
            metrics.NOTIFICATION_CHANNEL_UNAVAILABLE.labels("notify", self.name).set(1)
            raise
        if self._unavailable is not None:
            log.info("smtp_available", host=self._settings.smtp_host)
            metrics.NOTIFICATION_CHANNEL_UNAVAILABLE.labels("notify", self.name).set(0)
            self._unavailable = None

    async def _send_pooled(self, message: OutgoingEmail) -> None:
        async with self._slots:
            # Checked once a slot is free: the messages that waited for it behind a refused
            # login are held back too.
            if self._unavailable is not None and time.monotonic() < self._hold_until:
                raise ChannelUnavailable(self._unavailable)
            idle = self._idle.pop() if self._idle else None
            try:
                if idle is not None and idle.is_connected:
                    try:
                        await self._exchange(idle, message, connect=False)
                    except aiosmtplib.SMTPServerDisconnected:
                        pass  # an idle connection the server closed: one fresh try below
                    else:
                        return
                elif idle is not None:
                    idle.close()
                await self._exchange(self._client(), message, connect=True)
            except (aiosmtplib.SMTPException, OSError) as exc:
                raise _classify(exc) from None

    async def _exchange(
        self, client: aiosmtplib.SMTP, message: OutgoingEmail, *, connect: bool
    ) -> None:
        """One message over `client`; afterwards the connection is back in the pool when it can
        carry the next message, and closed otherwise: it is never left open outside the pool."""
        try:
            if connect:
                await client.connect()
        except BaseException:  # half connected (say, refused credentials): of no use
            client.close()
            raise
        try:
            await _send(client, message)
        except (aiosmtplib.SMTPRecipientsRefused, aiosmtplib.SMTPResponseException) as exc:
            # The server answered and aiosmtplib reset the envelope (RSET): the connection
            # serves the next message, unless the server said it is closing it (421).
            if client.is_connected and getattr(exc, "code", None) != _CLOSING:
                self._idle.append(client)
            else:
                client.close()
            raise
        except BaseException:  # disconnects, timeouts, cancellation: the state is unknown
            client.close()
            raise
        self._idle.append(client)

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


async def _send(client: aiosmtplib.SMTP, message: OutgoingEmail) -> None:
    await client.sendmail(message.sender, [message.recipient], message.content)


def _classify(exc: aiosmtplib.SMTPException | OSError) -> PermanentDelivery | TransientDelivery:
    """5xx replies about this message are permanent; 4xx, timeouts and disconnects are not;
    a server that cannot be reached, a refused login, an untrusted certificate or a missing
    extension are the channel's."""
    unavailable = _channel_problem(exc)
    if unavailable is not None:
        return unavailable
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        if codes and all(code >= 500 for code in codes):
            return PermanentDelivery(f"SMTP recipient refused: {codes[0]}")
        return TransientDelivery(f"SMTP recipient deferred: {codes[0] if codes else '?'}")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        kind = PermanentDelivery if exc.code >= 500 else TransientDelivery
        return kind(f"SMTP {exc.code} {type(exc).__name__}")
    return TransientDelivery(f"SMTP server unreachable: {type(exc).__name__}")


def _channel_problem(exc: BaseException) -> ChannelUnavailable | None:
    """What an operator must mend before any message can go, or None.

    A server that does not offer STARTTLS or AUTH is told by aiosmtplib in a bare
    SMTPException, whose text is all there is to tell them apart.
    """
    tls = _tls_problem(exc)
    if tls is not None:
        return ChannelUnavailable(tls)
    if isinstance(exc, aiosmtplib.SMTPConnectError | ConnectionRefusedError):
        # No message can go while the server is down: an outage longer than the attempts'
        # backoff would otherwise fail every message due during it.
        return ChannelUnavailable(f"SMTP server unreachable: {type(exc).__name__}")
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        # Wrong for every message alike (the reply's code only: never a credential).
        return ChannelUnavailable(f"SMTP server refused the login: {exc.code}")
    if type(exc) is aiosmtplib.SMTPException:
        for extension in ("STARTTLS", "AUTH"):
            if extension in exc.message:
                where = "" if extension == "STARTTLS" else " on this connection"
                return ChannelUnavailable(f"SMTP server does not offer {extension}{where}")
    return None


def _tls_problem(exc: BaseException) -> str | None:
    """Why TLS with the server failed, or None. The TLS error comes as it is after STARTTLS
    and as the cause of SMTPConnectError with implicit TLS."""
    tls = exc if isinstance(exc, ssl.SSLError) else exc.__cause__
    if isinstance(tls, ssl.SSLCertVerificationError):
        # verify_message is OpenSSL's reason ("self-signed certificate", "Hostname mismatch").
        why = getattr(tls, "verify_message", None) or "certificate verify failed"
        return f"SMTP server certificate not trusted: {why}"
    if isinstance(tls, ssl.SSLError):
        return f"SMTP TLS handshake failed: {getattr(tls, 'reason', None) or type(tls).__name__}"
    return None
