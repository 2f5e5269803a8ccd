"""A PostgreSQL server of one test's own, from Debian's binaries, that the test may stop freely.

Stopping the shared server would break every other test and session using it at that moment;
this one serves only the test that made it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path


def _binaries() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
    if not found:
        raise AssertionError(
            "PostgreSQL server binaries are missing: run `bash deploy/local/postgres.sh start`"
        )
    return found[-1].parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivatePostgres:
    """initdb in a temporary directory, then pg_ctl start and stop as often as wanted.

    `hba` holds the lines of pg_hba.conf in place of initdb's, and `configure` server settings
    (`ssl=on`, say), for a test that needs the server set up otherwise than the shared one.
    """

    def __init__(self, *, hba: Sequence[str] = ()) -> None:
        self._settings: dict[str, str] = {}
        self._hba = tuple(hba)
        self._bin = _binaries()
        self.port = _free_port()
        self._root = Path(tempfile.mkdtemp(prefix="loyalty-pg-"))
        self._data = self._root / "data"
        # initdb refuses to run as root: the server runs as the postgres user then.
        self._user = "postgres" if os.geteuid() == 0 else None
        if self._user is not None:
            account = pwd.getpwnam(self._user)
            os.chown(self._root, account.pw_uid, account.pw_gid)
        self.url = f"postgresql://loyalty@127.0.0.1:{self.port}/postgres"

    def configure(self, **settings: str) -> None:
        """Server settings for the next start."""
        self._settings.update(settings)

    def place(self, name: str, content: bytes) -> Path:
        """A file beside the server's data that only the server's user reads (a TLS key must
        be so, or PostgreSQL refuses to start); its path, for a setting."""
        path = self._root / name
        path.write_bytes(content)
        path.chmod(0o600)
        if self._user is not None:
            account = pwd.getpwnam(self._user)
            os.chown(path, account.pw_uid, account.pw_gid)
        return path

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", self._user, "--"] if self._user else []
        done = subprocess.run(
            [*prefix, *command], capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode != 0:
            raise AssertionError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")

    def start(self) -> PrivatePostgres:
        if not self._data.exists():
            self._run(
                str(self._bin / "initdb"), "-D", str(self._data), "-U", "loyalty",
                "--auth=trust", "--no-sync", "-E", "UTF8",
            )  # fmt: skip
            if self._hba:
                (self._data / "pg_hba.conf").write_text("\n".join(self._hba) + "\n")
        settings = "".join(f" -c {name}={value}" for name, value in self._settings.items())
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c max_connections=60 "
            f"-c unix_socket_directories={self._data} -c fsync=off{settings}"
        )
        self._run(
            str(self._bin / "pg_ctl"), "-D", str(self._data), "-o", options,
            "-l", str(self._root / "server.log"), "-w", "-t", "60", "start",
        )  # fmt: skip
        return self

    def stop(self) -> None:
        """A fast shutdown: sessions are ended, as when an operator stops the server."""
        self._run(str(self._bin / "pg_ctl"), "-D", str(self._data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        if (self._data / "postmaster.pid").exists():
            self.stop()
        shutil.rmtree(self._root, ignore_errors=True)
