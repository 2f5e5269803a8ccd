"""A private broker with SASL_SSL and mutual-TLS listeners, and the certificates it is given."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trustme

REPO_ROOT = Path(__file__).resolve().parent.parent
KAFKA_SCRIPT = REPO_ROOT / "deploy" / "local" / "kafka.sh"
SCRAM_USER, SCRAM_PASSWORD = "engine", "scram-secret-1"
PLAIN_USER, PLAIN_PASSWORD = "shop", "plain-secret-1"


@dataclass(frozen=True)
class Issued:
    cert: Path
    key: Path


class CertificateAuthority:
    """A trustme CA whose certificate and the certificates it issues are PEM files.

    trustme's certificates are valid from 2000 to 3000: OpenSSL and the JVM check them against
    the machine's real clock, which a shifted test clock does not move.
    """

    def __init__(self, directory: Path, name: str) -> None:
        self._ca = trustme.CA()
        self._directory = directory
        self.cert = directory / f"{name}-ca.pem"
        self._ca.cert_pem.write_to_path(str(self.cert))

    def issue(self, name: str, *identities: str) -> Issued:
        """A certificate for `identities` (a client's name when none) and its key."""
        leaf = self._ca.issue_cert(*(identities or (f"{name}.clients.example",)), common_name=name)
        issued = Issued(self._directory / f"{name}.pem", self._directory / f"{name}.key")
        for index, pem in enumerate(leaf.cert_chain_pems):
            pem.write_to_path(str(issued.cert), append=index > 0)
        leaf.private_key_pem.write_to_path(str(issued.key))
        return issued


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SecureBroker:
    """deploy/local/kafka.sh on ports and a state directory of its own, with secure listeners."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="loyalty-kafka-tls-"))
        self.certs = self.root / "certs"
        self.certs.mkdir()
        self.ca = CertificateAuthority(self.certs, "trusted")
        self.client = self.ca.issue("client")
        self._server = self.ca.issue("broker", "127.0.0.1", "localhost")
        self.port, self.controller_port = free_port(), free_port()
        self.sasl_ssl_port, self.ssl_port = free_port(), free_port()
        self._state = self.root / "state"

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "LOYALTY_KAFKA_STATE_DIR": str(self._state),
            "LOYALTY_KAFKA_PORT": str(self.port),
            "LOYALTY_KAFKA_CONTROLLER_PORT": str(self.controller_port),
            "LOYALTY_KAFKA_SASL_SSL_PORT": str(self.sasl_ssl_port),
            "LOYALTY_KAFKA_SSL_PORT": str(self.ssl_port),
            "LOYALTY_KAFKA_TLS_CERT_FILE": str(self._server.cert),
            "LOYALTY_KAFKA_TLS_KEY_FILE": str(self._server.key),
            "LOYALTY_KAFKA_TLS_CA_FILE": str(self.ca.cert),
            "LOYALTY_KAFKA_SCRAM_USERS": f"{SCRAM_USER}:{SCRAM_PASSWORD}",
            "LOYALTY_KAFKA_PLAIN_USERS": f"{PLAIN_USER}:{PLAIN_PASSWORD}",
        }

    def _script(self, command: str) -> None:
        done = subprocess.run(
            ["bash", str(KAFKA_SCRIPT), command],
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(f"kafka.sh {command} failed:\n{done.stdout}\n{done.stderr}")

    def start(self) -> SecureBroker:
        self._reuse_jars()
        self._script("start")
        return self

    def _reuse_jars(self) -> None:
        """The jars the shared local broker resolved, linked instead of resolved again."""
        shared = REPO_ROOT / ".local" / "kafka"
        if (shared / "libs").is_dir() and (shared / "libs.sha256").is_file():
            self._state.mkdir(parents=True, exist_ok=True)
            (self._state / "libs").symlink_to(shared / "libs")
            shutil.copy(shared / "libs.sha256", self._state / "libs.sha256")

    def stop(self) -> None:
        try:
            self._script("stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    @property
    def plaintext(self) -> str:
        return f"127.0.0.1:{self.port}"

    def scram(self, mechanism: str = "SCRAM-SHA-256", **changes: object) -> dict[str, Any]:
        """Settings of a client of the SASL_SSL listener (`changes` override any of them)."""
        return {
            "kafka_bootstrap_servers": f"127.0.0.1:{self.sasl_ssl_port}",
            "kafka_security_protocol": "SASL_SSL",
            "kafka_ssl_ca_file": self.ca.cert,
            "kafka_sasl_mechanism": mechanism,
            "kafka_sasl_username": SCRAM_USER,
            "kafka_sasl_password": SCRAM_PASSWORD,
            **changes,
        }

    def mutual_tls(self, **changes: object) -> dict[str, Any]:
        """Settings of a client of the SSL listener, which requires a client certificate."""
        return {
            "kafka_bootstrap_servers": f"127.0.0.1:{self.ssl_port}",
            "kafka_security_protocol": "SSL",
            "kafka_ssl_ca_file": self.ca.cert,
            "kafka_ssl_cert_file": self.client.cert,
            "kafka_ssl_key_file": self.client.key,
            **changes,
        }


def environment(values: dict[str, Any]) -> dict[str, str]:
    """The same settings as LOYALTY_* environment variables, for a process of the engine."""
    return {f"LOYALTY_{name.upper()}": str(value) for name, value in values.items()}
