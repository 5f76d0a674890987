"""The shadow rule set inside `leadrules run`: the candidate directory (`shadow: DIR` in
config/leadrules.yaml) loaded and reloaded like live's rules, and a thread of its own that
runs `ShadowRunner.step` when ingest wakes it (and at least every second).

A candidate that does not load is logged as `path:line:col: message` lines and kept as the
last error (`/ui/shadow` shows it); the live daemon runs on regardless, and the last good
candidate (if any) keeps running until an edit loads.

Several daemons on one PostgreSQL run one shadow between them (`ShadowLeader`): the others
wait, so they do not keep invalidating each other's cursor and rebuilding.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection

from leadrules.engine.clock import Clock
from leadrules.engine.daemon.db_outage import is_db_unavailable
from leadrules.engine.daemon.shadow import ShadowRunner
from leadrules.engine.daemon.store import Store
from leadrules.engine.errors import RuleError
from leadrules.engine.language.loader import load_rules

log = logging.getLogger("leadrules.shadow")

LEADER_LOCK = 0x4C52_5348_4144_4F57  # pg_advisory_lock's bigint key: "LRSHADOW"


class ShadowLeader:
    """Whether this daemon runs the database's shadow. On PostgreSQL: a session-level
    advisory lock, taken on a connection of its own and held while it lives (a daemon that
    dies frees it with its connection); on SQLite one daemon has the database anyway."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._conn: Connection | None = None

    def held(self) -> bool:
        if self.store.dialect != "postgresql":
            return True
        try:
            if self._conn is not None:
                self._conn.exec_driver_sql("SELECT 1")
                self._conn.rollback()
                return True
            conn = self.store.engine.connect()
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LEADER_LOCK})
            taken = bool(got.scalar())
            conn.rollback()  # a session lock outlives the transaction
            if taken:
                self._conn = conn
            else:
                conn.close()
            return taken
        except Exception:
            self._lost()
            raise

    def _lost(self) -> None:
        if self._conn is not None:
            self._conn.invalidate()  # closed for good: the lock goes with the session
            self._conn = None

    def release(self) -> None:
        self._lost()


class ShadowLoop:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        rules_dir: Path,
        config_dir: Path,
        horizon: Callable[[], int | None],
    ) -> None:
        self.store = store
        self.clock = clock
        self.rules_dir = rules_dir
        self.config_dir = config_dir
        self.horizon = horizon  # how far live's timers have fired (`Service.ticked_through`)
        self.runner: ShadowRunner | None = None
        self.leader = ShadowLeader(store)
        self.last_error: str | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.load()

    @property
    def rules_version(self) -> str | None:
        return None if self.runner is None else self.runner.rules.version

    def load(self) -> bool:
        """Load the candidate, or a changed one; a bad one is refused with its positions."""
        try:
            rules, warnings = load_rules(self.rules_dir, self.config_dir)
        except RuleError as exc:
            self.last_error = "\n".join(str(p) for p in exc.problems)
            for problem in exc.problems:
                log.error("shadow rules not loaded: %s", problem)
            return False
        for warning in warnings:
            log.warning("shadow rules: %s", warning)
        if self.runner is None:
            self.runner = ShadowRunner(self.store, rules, self.clock)
            log.info("shadow rules loaded from %s: version %s", self.rules_dir, rules.version)
        elif rules.version != self.runner.rules.version:
            self.runner.swap_rules(rules)
            log.info("shadow rules reloaded: version %s", rules.version)
        self.last_error = None
        return True

    def step(self) -> int:
        """One step of the runner: nothing while no candidate has loaded, or while another
        daemon runs the shadow (then the state is rebuilt once this one takes over)."""
        if self.runner is None:
            return 0
        if not self.leader.held():
            self.runner.generation = None
            return 0
        return self.runner.step(self.horizon())

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(timeout=1.0)
            self._wake.clear()
            try:
                self.step()
            except Exception as exc:  # live goes on; the shadow rebuilds and tries again
                if is_db_unavailable(exc):
                    log.warning("shadow: database unavailable")
                else:
                    log.exception("shadow step failed")
                self._stopping.wait(1.0)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="leadrules-shadow", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.leader.release()
