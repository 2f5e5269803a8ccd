"""Settings every service shares, read from LOYALTY_* environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from shared.kafka_connection import check_security_settings
from shared.secret_files import SecretFilesSource

DEFAULT_DATABASE_URL = "postgresql://loyalty:loyalty@127.0.0.1:5432/loyalty"
DEFAULT_KAFKA = "127.0.0.1:9092"


class CommonSettings(BaseSettings):
    """What every service needs: where Kafka and PostgreSQL are, how to log, how to batch."""

    # An error never repeats the input: it holds every secret setting, in the clear.
    model_config = SettingsConfigDict(
        env_prefix="LOYALTY_", extra="forbid", frozen=True, hide_input_in_errors=True
    )

    database_url: SecretStr = SecretStr(DEFAULT_DATABASE_URL)
    kafka_bootstrap_servers: str = DEFAULT_KAFKA
    # How every Kafka client connects (shared/kafka_connection.py); docs/operations.md has
    # examples for managed clusters.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    # PEM files: the CA that signed the brokers' certificates (the system's CAs when unset), and
    # the client's own certificate and key for mutual TLS.
    kafka_ssl_ca_file: Path | None = None
    kafka_ssl_cert_file: Path | None = None
    kafka_ssl_key_file: Path | None = None
    kafka_ssl_key_password: SecretStr | None = None
    kafka_ssl_check_hostname: bool = True
    # OAUTHBEARER is not offered: FastStream's KafkaBroker passes no token provider to aiokafka.
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    # The codec of the batches the outbox relay publishes; consumers decode every codec.
    kafka_compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = "none"
    # Consumer groups are "<prefix>-<service>.<topic>"; another prefix gives an isolated set.
    consumer_group_prefix: str = Field(default="loyalty", pattern=r"^[A-Za-z0-9._-]{1,100}$")
    log_format: Literal["json", "console"] = "json"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    http_host: str = "127.0.0.1"
    http_port: int | None = Field(default=None, ge=1, le=65535)
    # "expand" holds back the contract parts of migrations while replicas of the previous
    # release still run (docs/operations.md, "Rolling upgrades").
    migrations: Literal["all", "expand"] = "all"
    db_pool_min: int = Field(default=2, ge=1)
    db_pool_max: int = Field(default=10, ge=1)
    topic_partitions: int = Field(default=4, ge=1)
    batch_max_records: int = Field(default=2000, ge=1, le=10_000)
    # The partitions of a batch applied at once, each in its own transaction and connection.
    batch_partitions_in_parallel: int = Field(default=4, ge=1, le=32)
    # How long a poll waits for records; FastStream then also sleeps as long when none came, so
    # this bounds the extra wait of an event arriving at an idle consumer.
    batch_timeout_ms: int = Field(default=10, ge=1)
    outbox_batch_size: int = Field(default=1000, ge=1)
    outbox_idle_poll_s: float = Field(default=0.2, gt=0)
    retry_max_backoff_s: float = Field(default=10.0, gt=0)
    graceful_timeout_s: float = Field(default=30.0, gt=0)
    # An event dated further ahead of the service's clock is dead-lettered where time is acted on.
    event_ahead_max_s: float = Field(default=86_400.0, ge=0)
    # A consumer with lag whose last committed batch is older than this fails readiness.
    consumer_stuck_after_s: float = Field(default=120.0, gt=0)
    # How often lag, outbox backlog, pool use and readiness gauges are refreshed.
    monitor_interval_s: float = Field(default=10.0, gt=0)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            SecretFilesSource(settings_cls),
            dotenv_settings,
            file_secret_settings,
        )

    @model_validator(mode="after")
    def _kafka_security_is_complete(self) -> Self:
        check_security_settings(self)
        return self
