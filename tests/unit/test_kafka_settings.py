"""Kafka security settings: validation naming the setting, client options, secrets from files."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram512
from pydantic import ValidationError
from pydantic_settings import SettingsError
from secure_kafka import CertificateAuthority

from services.cli import main
from services.earn.settings import EarnSettings
from services.notify.settings import NotifySettings
from shared.kafka_connection import KafkaConnection, kafka_connection
from shared.settings import CommonSettings

BROKERS = "b-1.example:9096,b-2.example:9096"


@pytest.fixture
def ca(tmp_path: Path) -> CertificateAuthority:
    return CertificateAuthority(tmp_path, "unit")


def sasl_ssl(**changes: Any) -> dict[str, Any]:
    return {
        "kafka_bootstrap_servers": BROKERS,
        "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_mechanism": "SCRAM-SHA-512",
        "kafka_sasl_username": "engine",
        "kafka_sasl_password": "s3cret-pw",
        **changes,
    }


def refusal(**values: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        CommonSettings.model_validate(values)
    return str(caught.value)


def test_plaintext_passes_only_the_bootstrap_servers() -> None:
    kafka = KafkaConnection.from_settings(CommonSettings(kafka_bootstrap_servers=BROKERS))

    assert kafka.client_options() == {"bootstrap_servers": BROKERS}
    assert kafka.security() is None
    assert kafka_connection("127.0.0.1:9092").client_options() == {
        "bootstrap_servers": "127.0.0.1:9092"
    }


def test_sasl_ssl_scram_gives_aiokafka_and_faststream_the_same_connection() -> None:
    kafka = KafkaConnection.from_settings(CommonSettings.model_validate(sasl_ssl()))

    options = kafka.client_options()
    security = kafka.security()

    assert isinstance(options.pop("ssl_context"), ssl.SSLContext)
    assert options == {
        "bootstrap_servers": BROKERS,
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "engine",
        "sasl_plain_password": "s3cret-pw",
    }
    assert isinstance(security, SASLScram512)
    assert security.use_ssl
    assert (security.username, security.password) == ("engine", "s3cret-pw")


def test_hostname_checking_is_on_unless_turned_off() -> None:
    checked = KafkaConnection.from_settings(CommonSettings.model_validate(sasl_ssl()))
    unchecked = KafkaConnection.from_settings(
        CommonSettings.model_validate(sasl_ssl(kafka_ssl_check_hostname=False))
    )

    assert checked.ssl_context is not None and checked.ssl_context.check_hostname
    assert unchecked.ssl_context is not None and not unchecked.ssl_context.check_hostname
    assert unchecked.ssl_context.verify_mode == ssl.CERT_REQUIRED


def test_sasl_plaintext_plain_has_no_tls() -> None:
    settings = CommonSettings.model_validate(
        sasl_ssl(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism="PLAIN")
    )
    kafka = KafkaConnection.from_settings(settings)

    assert "ssl_context" not in kafka.client_options()
    assert kafka.client_options()["security_protocol"] == "SASL_PLAINTEXT"
    security = kafka.security()
    assert isinstance(security, SASLPlaintext)
    assert not security.use_ssl


def test_mutual_tls_loads_the_client_certificate(ca: CertificateAuthority) -> None:
    client = ca.issue("client")
    settings = CommonSettings(
        kafka_security_protocol="SSL",
        kafka_ssl_ca_file=ca.cert,
        kafka_ssl_cert_file=client.cert,
        kafka_ssl_key_file=client.key,
    )
    kafka = KafkaConnection.from_settings(settings)

    security = kafka.security()
    assert type(security) is BaseSecurity
    assert security.use_ssl
    assert security.ssl_context is kafka.ssl_context
    assert kafka.client_options()["security_protocol"] == "SSL"


def test_sasl_without_mechanism_or_credentials_names_what_is_missing() -> None:
    message = refusal(kafka_security_protocol="SASL_SSL", kafka_sasl_username="engine")

    assert "LOYALTY_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs" in message
    assert "LOYALTY_KAFKA_SASL_MECHANISM" in message
    assert "LOYALTY_KAFKA_SASL_PASSWORD" in message
    assert "LOYALTY_KAFKA_SASL_USERNAME" not in message


def test_sasl_settings_without_a_sasl_protocol_are_refused() -> None:
    message = refusal(**sasl_ssl(kafka_security_protocol="SSL"))

    assert "LOYALTY_KAFKA_SASL_MECHANISM" in message
    assert "does not use SASL" in message


def test_tls_files_without_a_tls_protocol_are_refused(ca: CertificateAuthority) -> None:
    message = refusal(kafka_ssl_ca_file=ca.cert)

    assert (
        "LOYALTY_KAFKA_SSL_CA_FILE given, but LOYALTY_KAFKA_SECURITY_PROTOCOL=PLAINTEXT" in message
    )


def test_a_certificate_without_its_key_is_refused(ca: CertificateAuthority) -> None:
    client = ca.issue("client")

    message = refusal(kafka_security_protocol="SSL", kafka_ssl_cert_file=client.cert)

    assert "LOYALTY_KAFKA_SSL_CERT_FILE and LOYALTY_KAFKA_SSL_KEY_FILE go together" in message
    assert "the key is missing" in message


def test_a_missing_file_is_named_with_its_setting(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pem"

    message = refusal(**sasl_ssl(kafka_ssl_ca_file=missing))

    assert f"LOYALTY_KAFKA_SSL_CA_FILE={missing}: the file cannot be read" in message


def test_a_file_that_is_not_a_certificate_is_named(tmp_path: Path) -> None:
    garbage = tmp_path / "ca.pem"
    garbage.write_text("not a certificate\n")

    message = refusal(**sasl_ssl(kafka_ssl_ca_file=garbage))

    assert f"LOYALTY_KAFKA_SSL_CA_FILE={garbage}: not a PEM CA certificate" in message


def test_refusals_never_repeat_the_secrets() -> None:
    message = refusal(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_password="s3cret-pw",
        database_url="postgresql://u:db-s3cret@h/db",
    )

    assert "s3cret" not in message


def test_the_connection_repr_hides_the_password() -> None:
    kafka = KafkaConnection.from_settings(CommonSettings.model_validate(sasl_ssl()))

    assert "s3cret-pw" not in repr(kafka)


# --- LOYALTY_<NAME>_FILE ---------------------------------------------------------------------


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("LOYALTY_DATABASE_URL", "LOYALTY_KAFKA_BOOTSTRAP_SERVERS"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_a_secret_is_read_from_the_file_named_by_its_file_variable(
    environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = tmp_path / "database-url"
    secret.write_text("postgresql://u:pw@db.internal/loyalty\n")
    environment.setenv("LOYALTY_DATABASE_URL_FILE", str(secret))

    settings = CommonSettings()

    assert settings.database_url.get_secret_value() == "postgresql://u:pw@db.internal/loyalty"


def test_only_one_trailing_newline_is_stripped(
    environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = tmp_path / "password"
    secret.write_bytes(b"pw \n\n")
    environment.setenv("LOYALTY_SMTP_USER", "mailer")
    environment.setenv("LOYALTY_SMTP_TLS", "starttls")
    environment.setenv("LOYALTY_SMTP_PASSWORD_FILE", str(secret))
    windows = tmp_path / "key"
    windows.write_bytes(b"k-1\r\n")
    environment.setenv("LOYALTY_UNSUBSCRIBE_SECRET_FILE", str(windows))

    settings = NotifySettings()

    assert settings.smtp_password is not None
    assert settings.smtp_password.get_secret_value() == "pw \n"
    assert settings.unsubscribe_secret is not None
    assert settings.unsubscribe_secret.get_secret_value() == "k-1"


def test_a_service_setting_secret_and_the_kafka_password_come_from_files(
    environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "api-key").write_text("admin-key-1")
    (tmp_path / "kafka").write_text("s3cret-pw\n")
    environment.setenv("LOYALTY_ADMIN_API_KEY_FILE", str(tmp_path / "api-key"))
    for name, value in sasl_ssl(kafka_sasl_password=None).items():
        if value is not None:
            environment.setenv(f"LOYALTY_{name.upper()}", value)
    environment.setenv("LOYALTY_KAFKA_SASL_PASSWORD_FILE", str(tmp_path / "kafka"))

    settings = EarnSettings()

    assert settings.admin_api_key is not None
    assert settings.admin_api_key.get_secret_value() == "admin-key-1"
    assert KafkaConnection.from_settings(settings).client_options()["sasl_plain_password"] == (
        "s3cret-pw"
    )


def test_a_secret_given_both_ways_is_refused(
    environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "url").write_text("postgresql://u:pw@h/db")
    environment.setenv("LOYALTY_DATABASE_URL", "postgresql://u:other@h/db")
    environment.setenv("LOYALTY_DATABASE_URL_FILE", str(tmp_path / "url"))

    with pytest.raises(SettingsError) as caught:
        CommonSettings()

    assert str(caught.value) == (
        "LOYALTY_DATABASE_URL and LOYALTY_DATABASE_URL_FILE are both set: set only one of them"
    )


def test_an_unreadable_secret_file_is_named(
    environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "absent"
    environment.setenv("LOYALTY_DATABASE_URL_FILE", str(missing))

    with pytest.raises(SettingsError) as caught:
        CommonSettings()

    assert str(caught.value) == (
        f"LOYALTY_DATABASE_URL_FILE={missing}: the file cannot be read (No such file or directory)"
    )


def test_file_variables_of_settings_that_are_not_secret_are_not_read(
    environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "level").write_text("debug")
    environment.setenv("LOYALTY_LOG_LEVEL_FILE", str(tmp_path / "level"))

    assert CommonSettings().log_level == "info"


def test_the_command_line_says_what_is_wrong_with_the_settings_in_one_line(
    environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    environment.setenv("LOYALTY_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    environment.setenv("LOYALTY_KAFKA_SASL_PASSWORD", "s3cret-pw")

    status = main(["publish", "order.paid"])

    assert status == 2
    assert capsys.readouterr().err == (
        "loyalty: invalid settings: LOYALTY_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs "
        "LOYALTY_KAFKA_SASL_MECHANISM, LOYALTY_KAFKA_SASL_USERNAME\n"
    )


def test_an_encrypted_client_key_needs_its_password(ca: CertificateAuthority) -> None:
    client = ca.issue("client")
    key = serialization.load_pem_private_key(client.key.read_bytes(), password=None)
    client.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"key-pw"),
        )
    )
    values = {
        "kafka_security_protocol": "SSL",
        "kafka_ssl_cert_file": client.cert,
        "kafka_ssl_key_file": client.key,
    }

    loaded = CommonSettings.model_validate(values | {"kafka_ssl_key_password": "key-pw"})
    message = refusal(**values, kafka_ssl_key_password="wrong-pw")
    without = refusal(**values)

    assert KafkaConnection.from_settings(loaded).ssl_context is not None
    assert f"LOYALTY_KAFKA_SSL_CERT_FILE={client.cert} and LOYALTY_KAFKA_SSL_KEY_FILE" in message
    assert "wrong LOYALTY_KAFKA_SSL_KEY_PASSWORD" in message
    assert "wrong-pw" not in message
    assert "wrong LOYALTY_KAFKA_SSL_KEY_PASSWORD" in without
