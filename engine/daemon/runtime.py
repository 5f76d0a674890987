"""`leadrules run`: the daemon. Ingest API, evaluation, timers, delivery and rule reload.

Threads: uvicorn serves HTTP; a worker thread evaluates new events as soon as ingest wakes
it (and at least every second); a delivery thread drains the outbox as soon as evaluation
commits decisions (and at least every second); APScheduler runs the timer sweep every second
and the rule reload check every two seconds. Evaluation is single-writer (a lock in
`Service`); delivery is single-flight (a lock here).
"""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from starlette.concurrency import run_in_threadpool

from leadrules.engine.clock import Clock, WallClock
from leadrules.engine.core.state import Decision
from leadrules.engine.daemon.db_outage import DbOutage, is_db_unavailable
from leadrules.engine.daemon.metrics import Metrics
from leadrules.engine.daemon.shadow_loop import ShadowLoop
from leadrules.engine.daemon.store import DecisionRow, Store
from leadrules.engine.daemon.workers import Workers
from leadrules.engine.errors import RuleError
from leadrules.engine.language.loader import load_rules
from leadrules.engine.language.settings import Settings, load_settings
from leadrules.engine.language.templates import TemplateSet
from leadrules.engine.timefmt import US_PER_S

log = logging.getLogger("leadrules.daemon")


def _snapshot(*dirs: Path) -> dict[str, tuple[float, int]]:
    """What rule and config files exist and when they changed: a reload check that needs no
    file-system events."""
    seen = {}
    for directory in dirs:
        if directory.is_dir():
            for path in directory.rglob("*"):
                if path.is_file():
                    stat = path.stat()
                    seen[str(path)] = (stat.st_mtime, stat.st_size)
    return seen


@dataclass
class DaemonOptions:
    """What `leadrules run` was told on its command line (the rest is in config/)."""

    rules_dir: Path = Path("rules")
    config_dir: Path = Path("config")
    host: str | None = None
    port: int | None = None
    database_url: str | None = None


class Daemon:
    def __init__(self, options: DaemonOptions, *, clock: Clock | None = None) -> None:
        self.options = options
        self.clock = clock or WallClock()
        settings = load_settings(options.config_dir)
        overrides: dict[str, Any] = {}
        if options.database_url:
            overrides["database_url"] = options.database_url
        ingest = settings.ingest.model_copy(
            update={
                k: v for k, v in (("host", options.host), ("port", options.port)) if v is not None
            }
        )
        self.settings: Settings = settings.model_copy(update={**overrides, "ingest": ingest})
        rules, warnings = load_rules(options.rules_dir, options.config_dir)
        for warning in warnings:
            log.warning("%s", warning)
        self.rules_version = rules.version
        self.last_reload_error: str | None = None
        shadow_dir = Path(self.settings.shadow) if self.settings.shadow else None
        self._watched = [options.rules_dir, options.config_dir, *filter(None, [shadow_dir])]
        self._files = _snapshot(*self._watched)

        self.store = Store(self.settings.database_url)
        self.store.migrate()
        # Alone on SQLite; one of any number of workers on PostgreSQL (daemon.workers).
        self.workers = Workers(self.store, self.clock, lambda: self._wake.set())
        self.metrics = Metrics()
        self.service = self.workers.service(self.store, rules, self.clock)
        self.service.on_decisions = self._decided
        self.service.refuse_future = True
        self.service.on_set_aside = self._set_aside
        # A candidate rule set beside live, recorded and never delivered (daemon.shadow_loop).
        self.shadow: ShadowLoop | None = None
        if shadow_dir is not None:
            self.shadow = ShadowLoop(
                self.store,
                self.clock,
                shadow_dir,
                options.config_dir,
                lambda: self.service.ticked_through,
            )
        dispatch = self.settings.dispatch
        self.dispatcher = self.workers.dispatcher(
            self.store,
            rules,
            TemplateSet(options.rules_dir / "templates"),
            self.clock,
            max_attempts=dispatch.max_attempts,
            backoff_base_us=dispatch.backoff_base,
            backoff_max_us=dispatch.backoff_max,
        )
        self.dispatcher.on_delivered = self._delivered
        self.dispatcher.on_failed = self._failed
        self._drain_lock = threading.Lock()
        self.outage = DbOutage()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._worker: threading.Thread | None = None
        # Delivery has its own thread, woken when evaluation or a timer commits decisions:
        # sending never holds up the evaluation of the next events, nor waits for it.
        self._deliver = threading.Event()
        self._deliverer: threading.Thread | None = None
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(2)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30},
            timezone=UTC,
        )
        self.scheduler.add_job(self.sweep_timers, "interval", seconds=1, id="timer-sweep")
        self.scheduler.add_job(self.check_reload, "interval", seconds=2, id="rule-reload")

    # -- work -------------------------------------------------------------------------------

    def write_keys(self) -> list[str]:
        return self.settings.resolved_write_keys()

    async def ingest(self, messages: list[Any], indices: list[int]) -> list[dict[str, Any]]:
        try:
            result = await run_in_threadpool(self.service.ingest, messages)
        except Exception as exc:
            if is_db_unavailable(exc):
                self.outage.failed(exc, "ingest")  # the API answers 503 with Retry-After
            raise
        self.outage.ok()
        self.metrics.events_accepted.inc(result.accepted)
        self.metrics.events_duplicate.inc(result.duplicates)
        for error in result.errors:
            error["index"] = indices[error["index"]]
            self.metrics.events_rejected.labels(error["field"]).inc()
        if result.accepted:
            self._wake.set()
            if self.shadow is not None:
                self.shadow.wake()
        return result.errors

    def _work_loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(timeout=self.workers.next_look(self.service))
            self._wake.clear()
            try:
                if self.service.process_pending():
                    if self.service.timers_due():
                        self.service.tick()
                    self._deliver.set()
            except Exception as exc:  # keep serving; the event stays pending and is retried
                if is_db_unavailable(exc):
                    self.outage.failed(exc, "evaluation")  # once per outage, no traceback
                else:
                    log.exception("evaluation failed")
                self._stopping.wait(1.0)

    def sweep_timers(self) -> None:
        try:
            if self.service.tick():
                self._deliver.set()
        except Exception as exc:
            if not is_db_unavailable(exc):
                raise
            self.outage.failed(exc, "timers")  # the next sweep tries again

    def _delivery_loop(self) -> None:
        """Deliver when woken, and at least every second (retries falling due)."""
        while not self._stopping.is_set():
            self._deliver.wait(timeout=1.0)
            self._deliver.clear()
            try:
                self.drain_outbox()
            except Exception:  # keep delivering; the message stays pending and is retried
                log.exception("delivery failed")
                self._stopping.wait(1.0)

    def drain_outbox(self) -> None:
        with self._drain_lock:
            try:
                # A drain that attempted fewer than its limit found no more due.
                while self.dispatcher.drain(100) >= 100 and not self._stopping.is_set():
                    pass
            except Exception as exc:
                if not is_db_unavailable(exc):
                    raise
                self.outage.failed(exc, "delivery")  # the next drain tries again

    def _set_aside(self, kind: str, status: str) -> None:
        self.metrics.set_aside.labels(kind, status).inc()

    def _decided(self, decisions: list[Decision], received_at: int | None) -> None:
        for decision in decisions:
            self.metrics.decisions.labels(decision.record["action"], decision.record["rule"]).inc()
        if received_at is not None:
            self.metrics.event_to_decision.observe(
                max(0, self.clock.now_us() - received_at) / US_PER_S
            )

    def _delivered(self, row: DecisionRow, now: int) -> None:
        self.metrics.deliveries.labels(row.channel or "").inc()
        if row.received_at is not None:
            self.metrics.event_to_delivery.observe(max(0, now - row.received_at) / US_PER_S)

    def _failed(self, row: DecisionRow, error: str, final: bool) -> None:
        self.metrics.delivery_failures.labels(row.channel or "", str(final).lower()).inc()

    # -- reload -------------------------------------------------------------------------

    def check_reload(self) -> bool:
        """Reload rules and channels when a file changed. A bad edit is logged with its
        positions and the last good rule set keeps running."""
        files = _snapshot(*self._watched)
        if files == self._files:
            return False
        self._files = files
        if self.shadow is not None:
            self.shadow.load()  # reloaded the same way, on its own: a bad one keeps the last
        try:
            rules, _ = load_rules(self.options.rules_dir, self.options.config_dir)
        except RuleError as exc:
            self.last_reload_error = "\n".join(str(p) for p in exc.problems)
            for problem in exc.problems:
                log.error("rules not reloaded: %s", problem)
            self.metrics.reloads.labels("error").inc()
            return False
        self.service.swap_rules(rules)
        self.dispatcher.use_rules(rules, TemplateSet(self.options.rules_dir / "templates"))
        self.rules_version, self.last_reload_error = rules.version, None
        self.metrics.reloads.labels("ok").inc()
        log.info("rules reloaded: version %s", rules.version)
        return True

    # -- status ---------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        try:
            counts = self.service.counts()
        except Exception as exc:
            if not is_db_unavailable(exc):
                raise
            self.outage.failed(exc, "health")
            return {"status": "unavailable", "database": "unreachable"}
        self.outage.ok()
        return {
            "status": "ok",
            "rules_version": self.rules_version,
            "last_reload_error": self.last_reload_error,
            **counts,
            **self.workers.status(),
        }

    def refresh_gauges(self) -> None:
        counts = self.service.counts()
        self.metrics.outbox_depth.set(counts["outbox_depth"])
        self.metrics.pending_events.set(counts["pending_events"])
        self.metrics.held.set(counts["set_aside"])

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start background work (the HTTP server is started by `serve`)."""
        self.workers.start()
        # After downtime: evaluate what was stored and fire overdue timers at their due time.
        self.service.process_pending(limit=10**9)
        self.service.tick()
        self._worker = threading.Thread(
            target=self._work_loop, name="leadrules-worker", daemon=True
        )
        self._worker.start()
        self._deliver.set()  # what waited in the outbox over the downtime
        self._deliverer = threading.Thread(
            target=self._delivery_loop, name="leadrules-delivery", daemon=True
        )
        self._deliverer.start()
        if self.shadow is not None:
            self.shadow.start()
        self.scheduler.start()

    def stop(self) -> None:
        """Let in-flight work finish, then stop."""
        self._stopping.set()
        self._wake.set()
        self.scheduler.shutdown(wait=True)
        if self._worker is not None:
            self._worker.join(timeout=30)
        self._deliver.set()
        if self._deliverer is not None:
            self._deliverer.join(timeout=30)
        if self.shadow is not None:
            self.shadow.stop()
        self.workers.stop()
        self.dispatcher.close()
        self.store.dispose()

    def serve(self) -> None:
        import uvicorn

        from leadrules.engine.daemon.api import create_app

        ingest = self.settings.ingest

        def terminate(signum: int, frame: Any) -> None:
            # uvicorn shuts the server down gracefully, then re-raises the signal it caught:
            # end with a normal exit so that `stop` lets in-flight work finish.
            raise SystemExit(0)

        signal.signal(signal.SIGTERM, terminate)
        self.start()
        try:
            keys = "set" if self.write_keys() else "none set: every ingest request is refused"
            log.info("listening on http://%s:%s (write keys: %s)", ingest.host, ingest.port, keys)
            uvicorn.run(
                create_app(self),
                host=ingest.host,
                port=ingest.port,
                log_level="warning",
                timeout_graceful_shutdown=10,
            )
        finally:
            self.stop()
