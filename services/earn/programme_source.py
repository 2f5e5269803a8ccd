"""The programme in force, picked up again when its file changes: no restart needed.

A changed file that is not valid is refused with an error naming the setting, and the
programme in force stays; the next change is read again.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import structlog

from services.earn.programme import EXAMPLE, Programme, ProgrammeError, load_programme
from shared import metrics
from shared.runtime import Runtime

log = structlog.get_logger(__name__)


class ProgrammeSource:
    """Holds the current programme; `watch` polls the file for changes."""

    def __init__(self, path: Path | None, *, poll_s: float = 5.0) -> None:
        self.path = path or EXAMPLE
        self.poll_s = poll_s
        self._seen = self._fingerprint()
        self.current: Programme = load_programme(self.path)  # at start-up an error is fatal

    @classmethod
    def fixed(cls, programme: Programme) -> ProgrammeSource:
        """A programme given in code (tests, tools): there is no file to watch."""
        source = cls.__new__(cls)
        source.path, source.poll_s, source._seen, source.current = None, 0.0, b"", programme  # type: ignore[assignment]
        return source

    def _fingerprint(self) -> bytes:
        try:
            return hashlib.sha256(self.path.read_bytes()).digest()
        except OSError:
            return b""

    def reload_if_changed(self) -> bool:
        """Read the file again if its content changed; True when a new programme took over."""
        if self.path is None:
            return False
        seen = self._fingerprint()
        if seen == self._seen:
            return False
        self._seen = seen
        try:
            programme = load_programme(self.path)
        except ProgrammeError as exc:
            metrics.PROGRAMME_RELOADS.labels("earn", "refused").inc()
            # The problems say it all; a traceback would only hide them.
            log.error("programme_refused", path=str(self.path), problems=str(exc))  # noqa: TRY400
            return False
        self.current = programme
        metrics.PROGRAMME_RELOADS.labels("earn", "applied").inc()
        log.info("programme_reloaded", path=str(self.path))
        return True

    async def watch(self, runtime: Runtime) -> None:
        """Background work of the service: poll until it stops."""
        if self.path is None or self.poll_s <= 0:
            return
        while True:
            await asyncio.sleep(self.poll_s)
            await asyncio.to_thread(self.reload_if_changed)
