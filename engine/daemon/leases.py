"""Which partitions this daemon evaluates, among the daemons sharing one PostgreSQL
(docs/scale.md, "Several workers").

Each worker holds a connection of its own to the database. On it, a session-level advisory
lock says that the worker is alive (one per worker, keyed by the connection's backend pid),
and one advisory lock per partition is the worker's lease on that partition. Every half
second the worker counts the live workers and takes free partitions (`pg_try_advisory_lock`)
up to its fair share, ceil(partitions / workers), or gives back the ones over it. A worker
killed by SIGKILL loses its connection, so PostgreSQL frees its locks at once and the others
take its partitions at their next round: within a second, with no timeout to wait out.

The worker also keeps a row in the `worker` table (heartbeat, partitions held) for
`/health` and operators; the locks, not the row, decide.

Every worker ingests, and an event it stores may belong to a partition another worker holds.
A worker that stores events sends `NOTIFY leadrules_ingest` in the same transaction
(`INGEST_CHANNEL`, delivered when it commits); every worker listens on its lease connection
between rounds and wakes its evaluation (`on_ingest`), so an event is evaluated within
milliseconds by whichever worker holds its partition, not at that worker's next look.

SQLite takes one worker: `SingleWorker` holds an exclusive lock on a file beside the
database, and a second `leadrules run` on it stops with a clear error.
"""

from __future__ import annotations

import fcntl
import logging
import math
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from leadrules.engine.daemon.partitions import PARTITIONS
from leadrules.engine.errors import LeadrulesError

log = logging.getLogger("leadrules.leases")

# The advisory lock key spaces (the first of pg_advisory_lock's two int4 keys).
PARTITION_LOCKS = 0x4C520001
MEMBER_LOCKS = 0x4C520002

_MEMBERS = (
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
    "AND classid = %s AND objsubid = 2 "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)
_HEARTBEAT = (
    "INSERT INTO worker (id, host, pid, started_at, heartbeat_at, partitions) "
    "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET "
    "heartbeat_at = excluded.heartbeat_at, partitions = excluded.partitions"
)
DAY_US = 86_400 * 1_000_000
INGEST_CHANNEL = "leadrules_ingest"  # NOTIFY'd by a worker that stored events


def libpq_url(url: str) -> str:
    """A libpq connection string from the daemon's `postgresql://` or
    `postgresql+psycopg://` URL."""
    return "postgresql://" + url.split("://", 1)[1]


class Leases:
    """This worker's partitions. `held()` is read by the evaluation threads; a thread of
    its own keeps the leases (`start`, `stop`)."""

    def __init__(
        self,
        url: str,
        now_us: Callable[[], int],
        *,
        interval: float = 0.5,
        on_change: Callable[[], None] | None = None,
        on_ingest: Callable[[], None] | None = None,
    ) -> None:
        self.url = libpq_url(url)
        self.now_us = now_us
        self.interval = interval
        self.on_change = on_change
        self.on_ingest = on_ingest
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.started_at = now_us()
        self.workers = 0  # live workers seen at the last round
        self._held: frozenset[int] = frozenset()
        self._conn: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._down = False  # the database was unreachable at the last round

    def held(self) -> frozenset[int]:
        return self._held

    def start(self) -> None:
        """Take a first share now (so start-up work has partitions), then keep the
        leases in a thread."""
        self.round()
        self._thread = threading.Thread(target=self._loop, name="leadrules-leases", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Give every partition back (the others take them at their next round)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._held = frozenset()
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.execute("DELETE FROM worker WHERE id = %s", (self.id,))
                conn.close()  # the session's advisory locks go with it
            except Exception:
                log.debug("leases: closing the connection failed", exc_info=True)

    def _loop(self) -> None:
        """A round every `interval`; between rounds, the ingest notifications."""
        while not self._stop.is_set():
            due = time.monotonic() + self.interval
            while (left := due - time.monotonic()) > 0 and not self._stop.is_set():
                self._listen(left)
            if not self._stop.is_set():
                self.round()

    def _listen(self, seconds: float) -> None:
        """Wait up to `seconds`, calling `on_ingest` for each notification that comes."""
        conn = self._conn
        if conn is None or conn.closed or self.on_ingest is None:
            self._stop.wait(seconds)
            return
        try:  # at most half a second at a time, so that `stop` is not kept waiting
            for _ in conn.notifies(timeout=min(seconds, 0.5), stop_after=1):
                self.on_ingest()
        except Exception:  # the connection broke: the next round reconnects
            log.debug("leases: listening failed", exc_info=True)
            self._stop.wait(seconds)

    def _connect(self) -> Any:
        import psycopg

        conn = psycopg.connect(self.url, autocommit=True, connect_timeout=5)
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
        conn.execute("SELECT pg_advisory_lock(%s, %s)", (MEMBER_LOCKS, pid))
        conn.execute(f"LISTEN {INGEST_CHANNEL}")
        return conn

    def round(self) -> None:
        """One round: count the live workers, take or give back partitions, heartbeat."""
        try:
            if self._conn is None or self._conn.closed:
                self._conn = self._connect()
            self._balance(self._conn)
            if self._down:
                log.info("leases: database available again; holding %d partitions", len(self._held))
                self._down = False
        except Exception as exc:
            # The connection is gone, and with it every lock this worker held.
            if not self._down:
                log.warning("leases: database unavailable (%s); holding no partition", exc)
                self._down = True
            self._set(frozenset())
            conn, self._conn = self._conn, None
            if conn is not None:
                try:
                    conn.close()
                except Exception:
                    log.debug("leases: closing a broken connection failed", exc_info=True)

    def _balance(self, conn: Any) -> None:
        self.workers = max(1, conn.execute(_MEMBERS, (MEMBER_LOCKS,)).fetchone()[0])
        fair = math.ceil(PARTITIONS / self.workers)
        held = set(self._held)
        if len(held) > fair:
            extra = sorted(held)[fair:]
            self._set(frozenset(held - set(extra)))  # no new batch starts on them
            for part in extra:
                conn.execute("SELECT pg_advisory_unlock(%s, %s)", (PARTITION_LOCKS, part))
            held -= set(extra)
        elif len(held) < fair:
            start = hash(self.id) % PARTITIONS
            for step in range(PARTITIONS):
                part = (start + step) % PARTITIONS
                if part in held:
                    continue
                row = conn.execute(
                    "SELECT pg_try_advisory_lock(%s, %s)", (PARTITION_LOCKS, part)
                ).fetchone()
                if row[0]:
                    held.add(part)
                    if len(held) >= fair:
                        break
            self._set(frozenset(held))
        now = self.now_us()
        parts = ",".join(str(p) for p in sorted(held))
        conn.execute(
            _HEARTBEAT, (self.id, socket.gethostname(), os.getpid(), self.started_at, now, parts)
        )
        conn.execute("DELETE FROM worker WHERE heartbeat_at < %s", (now - DAY_US,))

    def _set(self, held: frozenset[int]) -> None:
        grew = bool(held - self._held)
        self._held = held
        if grew and self.on_change is not None:
            self.on_change()  # partitions taken over may have work waiting


class SecondWorker(LeadrulesError):
    """A second `leadrules run` on one SQLite database."""


class SingleWorker:
    """SQLite: one `leadrules run` per database file."""

    def __init__(self, database: Path) -> None:
        self.path = database.with_name(database.name + ".worker-lock")
        self._file: IO[bytes] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        file = self.path.open("ab")
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.close()
            raise SecondWorker(
                f"another leadrules run already uses {self.path.with_suffix('')}: SQLite takes "
                "one worker; several workers need PostgreSQL (database_url: postgresql://...)"
            ) from None
        self._file = file

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
