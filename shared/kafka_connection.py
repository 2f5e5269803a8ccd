"""How every Kafka client connects (bootstrap servers, TLS, SASL), built once from the settings.

A client takes a `KafkaConnection`: aiokafka's clients its `client_options()`, FastStream's
broker its `security()`. A bare bootstrap string still means a PLAINTEXT connection, as tests
and tools against a local broker pass one.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiokafka.conn import collect_hosts, create_conn
from aiokafka.errors import (
    AuthenticationFailedError,
    KafkaConnectionError,
    KafkaError,
    SaslAuthenticationFailed,
)
from aiokafka.helpers import create_ssl_context
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from pydantic import SecretStr

from shared.errors import TransientFailure

if TYPE_CHECKING:
    from shared.settings import CommonSettings

_TLS = ("SSL", "SASL_SSL")
_SASL = ("SASL_PLAINTEXT", "SASL_SSL")
_SECURITY = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}


class KafkaAccessRefused(TransientFailure):
    """A broker answered but refused the client: wrong credentials or an untrusted certificate.

    Transient like an unreachable broker: a service keeps trying (a credential may be rotated
    under it) and reports itself not ready meanwhile.
    """


@dataclass(frozen=True, eq=False)
class KafkaConnection:
    """Where the brokers are and how to reach them; the password never shows in its repr."""

    bootstrap_servers: str
    security_protocol: str = "PLAINTEXT"
    ssl_context: ssl.SSLContext | None = None
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    # Named in errors: which CA did not trust the broker, which certificate it refused.
    ca_file: Path | None = field(default=None)
    client_cert_file: Path | None = field(default=None)

    @classmethod
    def from_settings(cls, settings: CommonSettings) -> KafkaConnection:
        protocol = settings.kafka_security_protocol
        sasl = protocol in _SASL
        return cls(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            security_protocol=protocol,
            ssl_context=tls_context(settings) if protocol in _TLS else None,
            sasl_mechanism=settings.kafka_sasl_mechanism if sasl else None,
            sasl_username=settings.kafka_sasl_username if sasl else None,
            sasl_password=settings.kafka_sasl_password if sasl else None,
            ca_file=settings.kafka_ssl_ca_file,
            client_cert_file=settings.kafka_ssl_cert_file,
        )

    def client_options(self) -> dict[str, Any]:
        """The keyword arguments of aiokafka's producer, consumer and admin client."""
        options: dict[str, Any] = {"bootstrap_servers": self.bootstrap_servers}
        if self.security_protocol == "PLAINTEXT":
            return options
        options["security_protocol"] = self.security_protocol
        if self.ssl_context is not None:
            options["ssl_context"] = self.ssl_context
        if self.sasl_mechanism is not None:
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = _reveal(self.sasl_password)
        return options

    def security(self) -> BaseSecurity | None:
        """FastStream's description of the same connection, for KafkaBroker(security=...)."""
        use_ssl = self.security_protocol in _TLS
        if self.sasl_mechanism is not None:
            return _SECURITY[self.sasl_mechanism](
                self.sasl_username or "",
                _reveal(self.sasl_password),
                ssl_context=self.ssl_context,
                use_ssl=use_ssl,
            )
        if use_ssl:
            return BaseSecurity(ssl_context=self.ssl_context, use_ssl=True)
        return None


def kafka_connection(target: KafkaConnection | str) -> KafkaConnection:
    """The connection itself, or a PLAINTEXT one to a bare bootstrap string."""
    return target if isinstance(target, KafkaConnection) else KafkaConnection(target)


def _reveal(secret: SecretStr | None) -> str:
    return "" if secret is None else secret.get_secret_value()


async def check_access(target: KafkaConnection | str, *, timeout_ms: int = 15_000) -> None:
    """Connect to a bootstrap broker as the clients will, and say in one line what refused us.

    aiokafka's clients report a refused login or certificate only as "Unable to bootstrap",
    with the reason in a log line of their own on every attempt. A broker that cannot be reached
    raises what the connection raised (transient: retried by services).
    """
    connection = kafka_connection(target)
    options = connection.client_options()
    del options["bootstrap_servers"]
    unreachable: BaseException | None = None
    for host, port, _ in collect_hosts(connection.bootstrap_servers):
        try:
            conn = await create_conn(host, port, request_timeout_ms=timeout_ms, **options)
        except (SaslAuthenticationFailed, AuthenticationFailedError) as exc:
            raise KafkaAccessRefused(
                f"Kafka broker {host}:{port}: authentication failed for user "
                f"{connection.sasl_username!r} with mechanism {connection.sasl_mechanism} "
                f"({_broker_says(exc)})"
            ) from None
        except ssl.SSLCertVerificationError as exc:
            trusted_by = f"CA file {connection.ca_file}" if connection.ca_file else "system CAs"
            raise KafkaAccessRefused(
                f"Kafka broker {host}:{port}: certificate of broker not trusted by {trusted_by} "
                f"({exc.verify_message})"
            ) from None
        except ssl.SSLError as exc:
            raise KafkaAccessRefused(
                f"Kafka broker {host}:{port}: TLS handshake refused ({exc.reason or exc}); "
                "does the broker require a client certificate (LOYALTY_KAFKA_SSL_CERT_FILE)?"
            ) from None
        except KafkaConnectionError as exc:
            if connection.ssl_context is None:
                unreachable = exc
                continue
            # After a TLS handshake, a broker that wants a client certificate it did not get
            # (or does not trust) closes the connection without a word.
            raise KafkaAccessRefused(
                f"Kafka broker {host}:{port}: closed the connection after the TLS handshake; "
                f"it did not accept the client certificate ({_client_certificate(connection)})"
            ) from None
        except (OSError, KafkaError, TimeoutError) as exc:
            unreachable = exc
            continue
        conn.close()
        return
    if unreachable is not None:
        raise unreachable
    raise KafkaAccessRefused(f"no Kafka broker in {connection.bootstrap_servers!r}")


def _client_certificate(connection: KafkaConnection) -> str:
    if connection.client_cert_file is None:
        return "none given: set LOYALTY_KAFKA_SSL_CERT_FILE and LOYALTY_KAFKA_SSL_KEY_FILE"
    return f"LOYALTY_KAFKA_SSL_CERT_FILE={connection.client_cert_file}"


def _broker_says(exc: KafkaError) -> str:
    text = str(exc)
    return text.split(": ", 1)[1] if text.startswith("[Error") and ": " in text else text


def tls_context(settings: CommonSettings) -> ssl.SSLContext:
    """The TLS context of the settings' CA, client certificate and hostname checking."""
    ca = settings.kafka_ssl_ca_file
    try:
        context: ssl.SSLContext = create_ssl_context(cafile=None if ca is None else str(ca))
    except (ssl.SSLError, OSError) as exc:
        raise ValueError(
            f"LOYALTY_KAFKA_SSL_CA_FILE={ca}: not a PEM CA certificate ({exc})"
        ) from None
    context.check_hostname = settings.kafka_ssl_check_hostname
    cert, key = settings.kafka_ssl_cert_file, settings.kafka_ssl_key_file
    if cert is not None:
        try:
            # "" when unset: an encrypted key is then refused, never asked for on a terminal.
            context.load_cert_chain(cert, key, password=_reveal(settings.kafka_ssl_key_password))
        except (ssl.SSLError, OSError) as exc:
            raise ValueError(
                f"LOYALTY_KAFKA_SSL_CERT_FILE={cert} and LOYALTY_KAFKA_SSL_KEY_FILE={key}: the "
                "certificate and its key could not be loaded (not PEM, a key that does not "
                f"match, or a wrong LOYALTY_KAFKA_SSL_KEY_PASSWORD): {exc}"
            ) from None
    return context


def check_security_settings(settings: CommonSettings) -> None:
    """Refuse a Kafka security setup that cannot work, naming the settings at fault."""
    protocol = settings.kafka_security_protocol
    named = f"LOYALTY_KAFKA_SECURITY_PROTOCOL={protocol}"
    sasl = {
        "LOYALTY_KAFKA_SASL_MECHANISM": settings.kafka_sasl_mechanism,
        "LOYALTY_KAFKA_SASL_USERNAME": settings.kafka_sasl_username,
        "LOYALTY_KAFKA_SASL_PASSWORD": settings.kafka_sasl_password,
    }
    tls = {
        "LOYALTY_KAFKA_SSL_CA_FILE": settings.kafka_ssl_ca_file,
        "LOYALTY_KAFKA_SSL_CERT_FILE": settings.kafka_ssl_cert_file,
        "LOYALTY_KAFKA_SSL_KEY_FILE": settings.kafka_ssl_key_file,
        "LOYALTY_KAFKA_SSL_KEY_PASSWORD": settings.kafka_ssl_key_password,
    }
    if protocol in _SASL:
        if missing := [name for name, value in sasl.items() if not value]:
            raise ValueError(f"{named} needs {', '.join(missing)}")
    elif given := [name for name, value in sasl.items() if value is not None]:
        raise ValueError(f"{', '.join(given)} given, but {named} does not use SASL")
    if protocol not in _TLS:
        if given := [name for name, value in tls.items() if value is not None]:
            raise ValueError(f"{', '.join(given)} given, but {named} does not use TLS")
        return
    cert, key = settings.kafka_ssl_cert_file, settings.kafka_ssl_key_file
    if (cert is None) != (key is None):
        raise ValueError(
            "LOYALTY_KAFKA_SSL_CERT_FILE and LOYALTY_KAFKA_SSL_KEY_FILE go together: "
            f"{'the key' if key is None else 'the certificate'} is missing"
        )
    if key is None and settings.kafka_ssl_key_password is not None:
        raise ValueError("LOYALTY_KAFKA_SSL_KEY_PASSWORD given without LOYALTY_KAFKA_SSL_KEY_FILE")
    for name, path in tls.items():
        if isinstance(path, Path):
            _check_readable(name, path)
    tls_context(settings)


def _check_readable(name: str, path: Path) -> None:
    try:
        with path.open("rb") as file:
            file.read(1)
    except OSError as exc:
        raise ValueError(f"{name}={path}: the file cannot be read ({exc.strerror})") from None
