"""The checkers of the operations files (promtool, docker compose), installed when missing."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROMETHEUS = REPO / "deploy" / "prometheus"
OPS_TOOLS = REPO / "deploy" / "local" / "ops-tools.sh"
COMPOSE_PLUGIN = Path("/usr/local/lib/docker/cli-plugins/docker-compose")


def _install(tool: str) -> None:
    # The same script `make setup` runs, so a machine that skipped it gets the same tools.
    subprocess.run(["bash", str(OPS_TOOLS), tool], check=True, timeout=1200)


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        _install("promtool")
        found = shutil.which("promtool")
    assert found is not None, "deploy/local/ops-tools.sh did not install promtool"
    return found


def compose_command() -> list[str]:
    """`docker compose` when the Docker CLI has the plugin, else the plugin on its own."""
    if not COMPOSE_PLUGIN.exists() and shutil.which("docker") is None:
        _install("compose")
    docker = shutil.which("docker")
    if docker is not None:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return [docker, "compose"]
    if not COMPOSE_PLUGIN.exists():
        _install("compose")
    return [str(COMPOSE_PLUGIN)]


def run(*command: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """Run a checker; the result carries its output for the assertion message."""
    return subprocess.run(
        list(command),
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPO,
    )
