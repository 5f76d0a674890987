"""`leadrules run` with a profile of its database work, for `python -m bench.live --profile`.

    python -m bench.daemon_profile OUT.json [leadrules run options]

Counts every SQL statement and commit per thread (SQLAlchemy's cursor and connection
events), with its time, and times the daemon's phases: evaluation (`process_pending`), the
timer sweep (`tick`), outbox drains (`drain`), one delivery and recording its outcome, and
the adapter's `send` inside it. SIGUSR1 starts the figures again; SIGUSR2 writes them to
OUT.json (else they are written when the daemon stops), with each thread's CPU time.
Nothing here changes what the daemon does; the hooks only read the clock.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import os
import re
import signal
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from leadrules.adapters.webhook import WebhookAdapter
from leadrules.engine.cli import main as cli_main
from leadrules.engine.daemon.dispatch import Dispatcher
from leadrules.engine.daemon.service import Service

_lock = threading.Lock()
# (thread name, what) -> [count, seconds]
_totals: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0.0])
_local = threading.local()


def _add(what: str, seconds: float) -> None:
    with _lock:
        thread = re.sub(r"[-_ ]?\d+(_\d+)?$", "", threading.current_thread().name)
        entry = _totals[(thread, what)]
        entry[0] += 1
        entry[1] += seconds


_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE)\s+\"?(\w+)", re.IGNORECASE)


def _statement_kind(statement: str) -> str:
    verb = statement.split(None, 1)[0].upper() if statement.strip() else "?"
    table = _TABLE.search(statement)
    return f"sql {verb} {table.group(1).lower() if table else '-'}"


@event.listens_for(Engine, "before_cursor_execute")
def _before(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
    _local.started = time.perf_counter()


@event.listens_for(Engine, "after_cursor_execute")
def _after(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
    _add(_statement_kind(statement), time.perf_counter() - _local.started)


@event.listens_for(Engine, "engine_connect")
def _connect(conn: Any) -> None:
    _add("connection checkout", 0.0)


def _thread_cpu() -> dict[str, float]:
    """CPU seconds used so far by each live thread (summed by name)."""
    used: dict[str, float] = defaultdict(float)
    for thread in threading.enumerate():
        if thread.ident is None:
            continue
        try:
            clock = time.pthread_getcpuclockid(thread.ident)
            used[re.sub(r"[-_ ]?\d+(_\d+)?$", "", thread.name)] += time.clock_gettime(clock)
        except OSError:  # the thread ended meanwhile
            pass
    return used


def _timed(owner: Any, name: str, label: str) -> None:
    original: Callable[..., Any] = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            _add(label, time.perf_counter() - started)

    setattr(owner, name, wrapper)


def _time_commits() -> None:
    """A commit's time is the DBAPI connection's `commit` (the server's fsync included)."""
    from sqlalchemy.engine.default import DefaultDialect

    original = DefaultDialect.do_commit

    def do_commit(self: Any, dbapi_connection: Any) -> None:
        started = time.perf_counter()
        try:
            original(self, dbapi_connection)
        finally:
            _add("commit", time.perf_counter() - started)

    DefaultDialect.do_commit = do_commit  # type: ignore[method-assign]


def main() -> int:
    out = sys.argv[1]
    services: list[type[Any]] = [Service]
    dispatchers: list[type[Any]] = [Dispatcher]
    with contextlib.suppress(ImportError):  # several workers on PostgreSQL
        from leadrules.engine.daemon.outbox_claims import ClaimingDispatcher
        from leadrules.engine.daemon.partitioned import PartitionedService

        services.append(PartitionedService)
        dispatchers.append(ClaimingDispatcher)
    for cls in services:
        for name in ("process_pending", "tick", "ingest"):
            if name in vars(cls):
                _timed(cls, name, f"phase {name}")
    for cls in dispatchers:
        # a drain; one delivery; recording a group's outcomes
        for name in ("drain", "_attempt", "_send", "_record"):
            if name in vars(cls):
                _timed(cls, name, f"phase dispatcher {name}")
    _timed(WebhookAdapter, "send", "phase webhook send")
    _time_commits()
    started = time.perf_counter()

    def dump() -> None:
        rows = [
            {"thread": thread, "what": what, "count": int(n), "seconds": round(s, 4)}
            for (thread, what), (n, s) in sorted(_totals.items())
        ]
        cpu = _thread_cpu()
        for name, seconds in sorted(cpu.items()):
            rows.append(
                {
                    "thread": name,
                    "what": "cpu (thread time)",
                    "count": 1,
                    "seconds": round(seconds - cpu_at_start.get(name, 0.0), 4),
                }
            )
        with open(out, "w") as f:
            json.dump({"wall_seconds": time.perf_counter() - started, "rows": rows}, f, indent=1)

    cpu_at_start: dict[str, float] = {}

    def restart(signum: int, frame: Any) -> None:
        nonlocal started, cpu_at_start
        with _lock:
            _totals.clear()
            started = time.perf_counter()
            cpu_at_start = _thread_cpu()

    signal.signal(signal.SIGUSR1, restart)
    # SIGUSR2 writes the figures at once (threads' CPU included, while they still run);
    # otherwise they are written at exit.
    signal.signal(signal.SIGUSR2, lambda signum, frame: dump())
    atexit.register(lambda: os.path.exists(out) or dump())
    return cli_main(["run", *sys.argv[2:]])


if __name__ == "__main__":
    sys.exit(main())
