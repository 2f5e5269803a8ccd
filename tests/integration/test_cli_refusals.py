"""An operator's command that cannot reach the database says why in one line and exits 1,
never with a traceback or the URL's password."""

from __future__ import annotations

import pytest
from infrastructure import Endpoints
from support import loyalty_command

PASSWORD = "not-the-Password-42"
COMMANDS = (
    ("prune", "--dry-run"),
    ("earn", "release"),
    ("analytics", "report", "--from", "2026-01-01", "--to", "2026-02-01"),
)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
@pytest.mark.parametrize(
    ("url", "said"),
    [
        (f"postgresql://loyalty:{PASSWORD}@127.0.0.1:{{port}}/loyalty", "InvalidPasswordError"),
        (f"postgresql://loyalty:{PASSWORD}@127.0.0.1:1/loyalty", "ConnectionRefusedError"),
    ],
    ids=["wrong password", "nothing listening"],
)
def test_a_command_that_cannot_connect_says_why_in_one_line(
    infrastructure: Endpoints, command: tuple[str, ...], url: str, said: str
) -> None:
    port = infrastructure.database_url.rsplit("@", 1)[1].split("/", 1)[0].rsplit(":", 1)[1]
    done = loyalty_command(
        *command,
        env={
            "LOYALTY_DATABASE_URL": url.format(port=port),
            "LOYALTY_KAFKA_BOOTSTRAP_SERVERS": infrastructure.kafka_bootstrap,
        },
    )
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"loyalty: {said}: "), done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert PASSWORD not in done.stdout + done.stderr
