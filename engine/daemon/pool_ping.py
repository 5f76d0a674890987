"""A pooled PostgreSQL connection is checked before use only when it has been idle.

SQLAlchemy's `pool_pre_ping` sends `SELECT 1` at every checkout: a round trip before each
transaction, which is most of the cost of the short ones the daemon runs many times a
second (an ingest batch, an evaluation, an outbox read, a delivery record). A connection
handed back less than `IDLE_S` ago was working a moment ago; one idle longer is pinged, and a
failed ping discards the pool (the server restarted, say) so that fresh connections are
made. A server lost within that moment fails the statement with a disconnect error instead,
which invalidates the pool as well; the daemon treats it as the database being away
(`db_outage`): ingest answers 503 and the client retries, evaluation and delivery try again.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError

IDLE_S = 1.0


def ping_when_idle(engine: Engine, idle_s: float = IDLE_S) -> Engine:
    """Install the check on `engine`'s pool (in place of `pool_pre_ping`); `engine`."""

    def checkin(dbapi_connection: Any, record: Any) -> None:
        record.info["leadrules_idle_since"] = time.monotonic()

    def checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.pop("leadrules_idle_since", None)
        if since is None or time.monotonic() - since < idle_s:
            return  # new, or in use a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)  # SELECT 1 outside a transaction
        except Exception as exc:
            error = DisconnectionError(f"ping failed: {exc}")
            error.invalidate_pool = True  # the others idled as long: make them anew too
            raise error from exc

    event.listen(engine, "checkin", checkin)
    event.listen(engine, "checkout", checkout)
    return engine
