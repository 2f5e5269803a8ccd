"""How infrastructure chooses where Kafka and PostgreSQL come from (no I/O)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import infrastructure as infra
import pytest
from infrastructure import (
    InfrastructureError,
    combine_sources,
    local_database_url,
    local_kafka_bootstrap,
    provide_infrastructure,
    redact_url,
    url_from_script_output,
    use_testcontainers,
)

KAFKA = "10.0.0.1:9092"
DB = "postgresql://app:s3cret@db.example:6543/app"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (DB, "postgresql://app:***@db.example:6543/app"),
        ("postgresql://app@db.example/app", "postgresql://app@db.example/app"),
        (
            "postgresql://app:pw@[::1]:5432/app?sslmode=disable",
            "postgresql://app:***@[::1]:5432/app?sslmode=disable",
        ),
        ("postgresql://app:pw@db/app", "postgresql://app:***@db/app"),
    ],
)
def test_redact_url_hides_only_the_password(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_local_endpoints_follow_the_scripts_defaults_and_ports() -> None:
    assert local_kafka_bootstrap({}) == "127.0.0.1:9092"
    assert local_database_url({}) == "postgresql://loyalty:loyalty@127.0.0.1:5432/loyalty"
    env = {"LOYALTY_KAFKA_PORT": "19092", "LOYALTY_PG_PORT": "15432"}
    assert local_kafka_bootstrap(env) == "127.0.0.1:19092"
    assert local_database_url(env) == "postgresql://loyalty:loyalty@127.0.0.1:15432/loyalty"


@pytest.mark.parametrize("port", ["abc", "0", "70000", "-1"])
def test_a_bad_port_setting_is_an_error(port: str) -> None:
    with pytest.raises(InfrastructureError, match="LOYALTY_KAFKA_PORT"):
        local_kafka_bootstrap({"LOYALTY_KAFKA_PORT": port})


def test_url_from_script_output_takes_the_last_line_when_it_is_a_url() -> None:
    assert url_from_script_output(f"noise\n{DB}\n\n") == DB
    assert url_from_script_output("postgres: ready\n") is None
    assert url_from_script_output("") is None


def test_sources_are_named_once_when_equal_and_both_otherwise() -> None:
    assert combine_sources("local", "local") == "local"
    assert combine_sources("environment", "local") == "kafka=environment,database=local"


@pytest.mark.parametrize(
    ("value", "allowed"), [("", True), ("1", True), ("0", False), ("off", False), ("False", False)]
)
def test_testcontainers_can_be_turned_off(value: str, allowed: bool) -> None:
    assert use_testcontainers({"LOYALTY_USE_TESTCONTAINERS": value}) is allowed


class FakeWorld:
    """Stands in for the probes, Docker, containers and local scripts."""

    def __init__(
        self, monkeypatch: pytest.MonkeyPatch, *, docker: bool, answering: bool = True
    ) -> None:
        self.calls: list[str] = []
        self.stopped: list[str] = []
        problem = None if answering else "ConnectionRefusedError"
        monkeypatch.setattr(infra, "kafka_problem", lambda *_a, **_k: problem)
        monkeypatch.setattr(infra, "database_problem", lambda *_a, **_k: problem)
        monkeypatch.setattr(infra, "docker_available", self._docker(docker))
        monkeypatch.setattr(infra, "_kafka_container", self._container("kafka", "tc:1"))
        monkeypatch.setattr(
            infra, "_postgres_container", self._container("postgres", "postgresql://tc/db")
        )
        monkeypatch.setattr(infra, "_local_kafka", self._local("kafka", "127.0.0.1:9092"))
        monkeypatch.setattr(
            infra, "_local_database", self._local("postgres", "postgresql://local/db")
        )

    def _docker(self, answer: bool) -> Callable[..., bool]:
        def docker_available(*_a: object) -> bool:
            self.calls.append("docker")
            return answer

        return docker_available

    def _container(self, name: str, endpoint: str) -> Callable[..., str]:
        def start(_env: object, stack: contextlib.ExitStack) -> str:
            self.calls.append(f"container:{name}")
            stack.callback(self.stopped.append, name)
            return endpoint

        return start

    def _local(self, name: str, endpoint: str) -> Callable[..., str]:
        def start(_env: object) -> str:
            self.calls.append(f"local:{name}")
            return endpoint

        return start


def test_environment_settings_win_and_nothing_else_is_tried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = FakeWorld(monkeypatch, docker=True)
    env = {"LOYALTY_KAFKA_BOOTSTRAP_SERVERS": KAFKA, "LOYALTY_DATABASE_URL": DB}
    with provide_infrastructure(env) as endpoints:
        assert endpoints == infra.Endpoints(KAFKA, DB, "environment")
    assert world.calls == []


def test_a_setting_that_does_not_answer_is_an_error_without_leaking_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    FakeWorld(monkeypatch, docker=True, answering=False)
    with (
        pytest.raises(InfrastructureError) as caught,
        provide_infrastructure({"LOYALTY_DATABASE_URL": DB}),
    ):
        pass
    assert "LOYALTY_DATABASE_URL" in str(caught.value)
    assert "s3cret" not in str(caught.value)


def test_docker_brings_containers_for_what_is_missing_and_stops_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = FakeWorld(monkeypatch, docker=True)
    with provide_infrastructure({"LOYALTY_KAFKA_BOOTSTRAP_SERVERS": KAFKA}) as endpoints:
        assert endpoints.kafka_bootstrap == KAFKA
        assert endpoints.database_url == "postgresql://tc/db"
        assert endpoints.source == "kafka=environment,database=testcontainers"
        assert world.stopped == []
    assert world.calls == ["docker", "container:postgres"]
    assert world.stopped == ["postgres"]


def test_without_docker_the_local_scripts_are_used(monkeypatch: pytest.MonkeyPatch) -> None:
    world = FakeWorld(monkeypatch, docker=False)
    with provide_infrastructure({}) as endpoints:
        assert endpoints == infra.Endpoints("127.0.0.1:9092", "postgresql://local/db", "local")
    assert world.calls == ["docker", "local:kafka", "local:postgres"]


def test_testcontainers_turned_off_skips_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    world = FakeWorld(monkeypatch, docker=True)
    with provide_infrastructure({"LOYALTY_USE_TESTCONTAINERS": "0"}) as endpoints:
        assert endpoints.source == "local"
    assert world.calls == ["local:kafka", "local:postgres"]
