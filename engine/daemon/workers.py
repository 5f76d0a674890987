"""How `leadrules run` shares its database with other workers (docs/scale.md, "Several
workers"): on PostgreSQL, as one of any number of workers, each holding leases on some
partitions (`leases`, `partitioned`, `outbox_claims`); on SQLite, alone (a second worker on
the same file stops with an error)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from leadrules.engine.clock import Clock
from leadrules.engine.core.ruleset import RuleSet
from leadrules.engine.daemon.dispatch import Dispatcher
from leadrules.engine.daemon.leases import Leases, SingleWorker
from leadrules.engine.daemon.outbox_claims import ClaimingDispatcher
from leadrules.engine.daemon.partitioned import PartitionedService
from leadrules.engine.daemon.service import Service
from leadrules.engine.daemon.store import Store


def sqlite_file(url: str) -> Path | None:
    path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else ""
    return Path(path) if path and path != ":memory:" else None


class Workers:
    """This daemon's place among the workers of its database."""

    def __init__(self, store: Store, clock: Clock, wake: Callable[[], None]) -> None:
        self.leases: Leases | None = None
        self.single: SingleWorker | None = None
        if store.dialect == "postgresql":
            self.leases = Leases(store.url, clock.now_us, on_change=wake, on_ingest=wake)
        elif (path := sqlite_file(store.url)) is not None:
            self.single = SingleWorker(path)

    def service(self, store: Store, rules: RuleSet, clock: Clock) -> Service:
        if self.leases is None:
            return Service(store, rules, clock)
        return PartitionedService(store, rules, clock, self.leases)

    @property
    def dispatcher(self) -> type[Dispatcher]:
        return Dispatcher if self.leases is None else ClaimingDispatcher

    def start(self) -> None:
        """Take this worker's share (PostgreSQL) or the database file (SQLite)."""
        if self.single is not None:
            self.single.acquire()
        if self.leases is not None:
            self.leases.start()

    def stop(self) -> None:
        if self.leases is not None:
            self.leases.stop()
        if self.single is not None:
            self.single.release()

    def next_look(self, service: Service) -> float:
        """Seconds until the work loop looks for events again without being woken (this
        daemon's ingest, another worker's ingest (NOTIFY, `leases`) and partitions taken over
        wake it)."""
        return 1.0

    def status(self) -> dict[str, Any]:
        """For `/health`: this worker, the live workers and the partitions it holds."""
        if self.leases is None:
            return {}
        return {
            "worker": self.leases.id,
            "workers": self.leases.workers,
            "partitions": sorted(self.leases.held()),
        }
