"""The database unreachable: one log line when it goes, one when it is back, a 503 meanwhile.

While PostgreSQL restarts, every request, worker pass and scheduler job fails the same way;
a traceback for each would bury the log (120 of them in a 10 s outage before this module).
`DbOutage` remembers that the database is down, logs the first failure (without a
traceback: the cause is the driver's one-line message) and the recovery with the outage's
length; HTTP answers `503` with `Retry-After` so that clients come back.
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy.exc import DBAPIError, DisconnectionError, TimeoutError

log = logging.getLogger("leadrules.daemon")

RETRY_AFTER_S = 2  # what a client is told to wait: the pool retries within a second


def is_db_unavailable(exc: BaseException) -> bool:
    """A connection-level failure (server gone, refused, timed out), not a bug in a query."""
    if isinstance(exc, DisconnectionError | TimeoutError):
        return True
    if isinstance(exc, DBAPIError):
        return bool(exc.connection_invalidated) or type(exc).__name__ in (
            "OperationalError",
            "InterfaceError",
        )
    return False


def first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class DbOutage:
    """Whether the database is down, and since when (monotonic seconds)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.since: float | None = None
        self.outages = 0

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, exc: BaseException, where: str) -> None:
        with self._lock:
            if self.since is not None:
                return
            self.since = time.monotonic()
            self.outages += 1
        log.error("database unavailable (%s): %s", where, first_line(exc))

    def ok(self) -> None:
        if self.since is None:
            return
        with self._lock:
            since, self.since = self.since, None
        if since is not None:
            log.warning("database available again after %.1f s", time.monotonic() - since)
