"""A real SMTP server, a decrypting Web Push receiver and event builders for the notify tests."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import os
import socket
import ssl
import threading
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal

import http_ece
import trustme
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from support import unique

from shared.events import CloudEvent, make_event
from shared.events.catalog import TOPICS

# This session's customers: its workers serve only ids with this prefix (LOYALTY_WORKER_SCOPE),
# so sessions sharing the database never send each other's messages.
NOTIFY_SCOPE = unique("nt")

# The platform key of the notify the tests start (LOYALTY_NOTIFY_API_KEY).
NOTIFY_API_KEY = "test-notify-platform-key"

# One worker pass at an explicit time (the `run_due` fixture).
RunDue = Callable[..., Awaitable[Counter[str]]]


def notify_customer() -> str:
    """A customer id inside this session's notify scope."""
    return unique(NOTIFY_SCOPE)


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# --- SMTP ---------------------------------------------------------------------------------


@dataclass
class Captured:
    """One message the SMTP server accepted."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes = b""  # the message's bytes as the server received them
    encrypted: bool = False  # it came over TLS (implicit or after STARTTLS)
    login: str | None = None  # the user name it was sent as, when the client authenticated

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])

    def part(self, subtype: str) -> str:
        body = self.message.get_body(preferencelist=(subtype,))
        assert body is not None, f"no text/{subtype} part"
        return str(body.get_content())


class _Handler:
    def __init__(self, inbox: SmtpInbox) -> None:
        self._inbox = inbox

    async def handle_MAIL(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        # aiosmtpd's own auth_required is for STARTTLS servers only (it warns otherwise): the
        # inbox asks for a login itself, whatever the TLS.
        if self._inbox.login is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self._inbox.refuse_rcpt is not None and self._inbox.refuse_rcpt(address):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        content = envelope.original_content or envelope.content or b""
        assert isinstance(content, bytes)
        message = message_from_bytes(content, policy=policy.default)
        captured = Captured(str(envelope.mail_from), list(envelope.rcpt_tos), message, content)
        captured.encrypted = server.transport is not None and bool(
            server.transport.get_extra_info("sslcontext")
        )
        if isinstance(session.auth_data, LoginPassword):
            captured.login = session.auth_data.login.decode()
        if self._inbox.before_accept is not None and not self._inbox.before_accept(captured):
            return "451 4.3.0 try again later"
        with self._inbox.lock:
            self._inbox.messages.append(captured)
        return "250 OK"


@dataclass
class SmtpInbox:
    """aiosmtpd on a free port in a thread: real SMTP over TCP, messages kept in memory."""

    messages: list[Captured] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Called before a message is accepted; returning False refuses it (not captured).
    before_accept: Callable[[Captured], bool] | None = None
    # Called with each RCPT address; returning True refuses it with 550.
    refuse_rcpt: Callable[[str], bool] | None = None
    controller: Controller | None = None
    # Client connections open now, and the most that were open at once.
    open_connections: int = 0
    peak_connections: int = 0
    # TLS as mail providers offer it: "starttls" (required before anything else is said) or
    # "tls" (implicit, SMTPS), with this certificate; and the one login taken, if any.
    tls: Literal["none", "starttls", "tls"] = "none"
    certificate: trustme.LeafCert | None = None
    login: tuple[str, str] | None = None
    # The sessions in which a client tried to log in (aiosmtplib tries each mechanism offered).
    login_sessions: list[Session] = field(default_factory=list)

    def start(self) -> SmtpInbox:
        with socket.socket() as probe:  # aiosmtpd's controller needs a concrete port
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        self.controller = _CountingController(
            self, hostname="127.0.0.1", port=port, **self._security()
        )
        self.controller.start()
        return self

    def _security(self) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if self.tls != "none":
            assert self.certificate is not None, "a TLS server needs a certificate"
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.certificate.configure_cert(context)
            if self.tls == "starttls":
                options |= {"tls_context": context, "require_starttls": True}
            else:
                options |= {"ssl_context": context, "server_hostname": "127.0.0.1"}
        if self.login is not None:
            # AUTH is offered only once the connection is encrypted, but for a plain server
            # (a relay that takes a login in clear, which notify refuses unless told).
            options |= {
                "authenticator": self._authenticate,
                "auth_require_tls": self.tls == "starttls",
            }
        return options

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: object
    ) -> AuthResult:
        given = (
            (data.login.decode(), data.password.decode())
            if isinstance(data, LoginPassword)
            else None
        )
        with self.lock:
            if not any(seen is session for seen in self.login_sessions):
                self.login_sessions.append(session)
        return AuthResult(success=given == self.login, handled=False, auth_data=data)

    def connection_opened(self) -> None:
        with self.lock:
            self.open_connections += 1
            self.peak_connections = max(self.peak_connections, self.open_connections)

    def connection_closed(self) -> None:
        with self.lock:
            self.open_connections -= 1

    @property
    def port(self) -> int:
        assert self.controller is not None
        return int(self.controller.port)

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()

    def to(self, address: str) -> list[Captured]:
        with self.lock:
            return [m for m in self.messages if address in m.rcpt_tos]


class _CountingSmtp(SMTP):
    """aiosmtpd's protocol, telling the inbox when a client connects and disconnects."""

    def __init__(self, inbox: SmtpInbox, handler: _Handler, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._inbox = inbox

    def connection_made(self, transport: Any) -> None:
        self._inbox.connection_opened()
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        self._inbox.connection_closed()
        super().connection_lost(error)


class _CountingController(Controller):
    def __init__(self, inbox: SmtpInbox, **kwargs: Any) -> None:
        super().__init__(_Handler(inbox), **kwargs)
        self._inbox = inbox

    def factory(self) -> SMTP:
        return _CountingSmtp(self._inbox, self.handler, **self.SMTP_kwargs)


# --- Web Push -----------------------------------------------------------------------------


@dataclass
class PushSubscriber:
    """A browser's side of a subscription: the keys that decrypt what is pushed to it."""

    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes

    def subscription(self) -> dict[str, Any]:
        public = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": self.endpoint,
            "keys": {"p256dh": b64url(public), "auth": b64url(self.auth)},
        }


@dataclass
class Pushed:
    path: str
    headers: dict[str, str]
    plaintext: bytes | None


class PushReceiver:
    """A push service over HTTPS (self-signed) that decrypts aes128gcm payloads (RFC 8291)."""

    def __init__(self, directory: Path) -> None:
        self.cert_path = directory / "push-cert.pem"
        self._key_path = directory / "push-key.pem"
        self.received: list[Pushed] = []
        self.subscribers: dict[str, PushSubscriber] = {}
        self.status: dict[str, int] = {}  # path -> status to answer (default 201)
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> PushReceiver:
        _self_signed(self.cert_path, self._key_path)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_path, self._key_path)
        app = web.Application()
        app.router.add_post("/push/{id}", self._receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def subscriber(self) -> PushSubscriber:
        path = f"/push/{unique('s')}"
        sub = PushSubscriber(
            f"https://127.0.0.1:{self.port}{path}",
            ec.generate_private_key(ec.SECP256R1()),
            os.urandom(16),
        )
        self.subscribers[path] = sub
        return sub

    def to(self, subscriber: PushSubscriber) -> list[Pushed]:
        path = subscriber.endpoint.split(str(self.port), 1)[1]
        return [p for p in self.received if p.path == path]

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        sub = self.subscribers.get(request.path)
        plaintext = None
        if sub is not None:
            plaintext = http_ece.decrypt(
                body, private_key=sub.private_key, auth_secret=sub.auth, version="aes128gcm"
            )
        self.received.append(Pushed(request.path, dict(request.headers), plaintext))
        return web.Response(status=self.status.get(request.path, 201))


def _self_signed(cert_path: Path, key_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    # Valid for decades either side of any date the suite runs at: OpenSSL checks it against
    # the machine's real clock, which a shifted test clock (make test-clocks) does not move.
    valid_from = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid_from)
        .not_valid_after(valid_from.replace(year=2100))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def vapid_private_key() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return b64url(key.private_numbers().private_value.to_bytes(32, "big"))


# --- events -------------------------------------------------------------------------------


def _event(type_: str, customer_id: str, data: dict[str, Any], at: dt.datetime) -> CloudEvent[Any]:
    model = TOPICS["shop.customers" if type_.startswith("customer.") else _topic(type_)][type_]
    return make_event(
        type_, source="tests/shop", subject=customer_id, data=model.model_validate(data), time=at
    )


def _topic(type_: str) -> str:
    for topic, types in TOPICS.items():
        if type_ in types:
            return topic
    raise KeyError(type_)


def signed_up(
    customer_id: str,
    at: dt.datetime,
    *,
    email: str,
    name: str = "Nguyễn Văn An",
    locale: str = "vi-VN",
    time_zone: str = "Asia/Ho_Chi_Minh",
    consent_email: bool = True,
    push: dict[str, Any] | None = None,
    birthday: str | None = None,
    shop_id: str = "default",
) -> CloudEvent[Any]:
    data: dict[str, Any] = {
        "shop_id": shop_id,
        "customer_id": customer_id,
        "email": email,
        "name": name,
        "locale": locale,
        "time_zone": time_zone,
        "consent": {"email": consent_email, "push": push is not None},
        "push_subscription": push,
        "birthday": birthday,
    }
    return _event("customer.signed_up", customer_id, data, at)


CART_LINES = [
    {
        "sku": "TEA-01",
        "name": "Bộ ấm trà <Bát Tràng>",
        "quantity": 1,
        "unit_price": "1234567",
        "image_url": "https://shop.example/img/tea-01.jpg",
        "product_url": "https://shop.example/p/tea-01",
    },
    {
        "sku": "CUP-02",
        "name": "Chén sứ men lam",
        "quantity": 2,
        "unit_price": "89000",
        "product_url": "https://shop.example/p/cup-02",
    },
]


def cart_abandoned(
    customer_id: str,
    at: dt.datetime,
    *,
    cart_id: str | None = None,
    shop_id: str = "default",
    cart_url: str = "https://shop.example/cart/1",
) -> CloudEvent[Any]:
    data = {
        "shop_id": shop_id,
        "cart_id": cart_id or unique("cart"),
        "customer_id": customer_id,
        "currency": "VND",
        "items": CART_LINES,
        "total": {"amount": "1412567", "currency": "VND"},
        "cart_url": cart_url,
    }
    return _event("cart.abandoned", customer_id, data, at)


def order_placed(
    customer_id: str,
    at: dt.datetime,
    *,
    total: str = "259000",
    shop_id: str = "default",
    order_id: str | None = None,
) -> CloudEvent[Any]:
    data = {
        "shop_id": shop_id,
        "order_id": order_id or unique("o"),
        "customer_id": customer_id,
        "currency": "VND",
        "items": [
            {"sku": "TEA-01", "name": "Tea", "category": "home", "quantity": 1, "unit_price": total}
        ],
        "totals": {"total": {"amount": total, "currency": "VND"}},
    }
    return _event("order.placed", customer_id, data, at)


def event_of(
    type_: str, customer_id: str, data: dict[str, Any], at: dt.datetime
) -> CloudEvent[Any]:
    return _event(type_, customer_id, data, at)


def earned(
    customer: str, delta: int, balance: int, at: dt.datetime, *, shop_id: str = "default"
) -> CloudEvent[Any]:
    data = {
        "shop_id": shop_id,
        "entry_id": unique("earn"),
        "customer_id": customer,
        "delta": delta,
        "balance_after": balance,
        "reason": "order.paid",
    }
    return event_of("points.earned", customer, data, at)
