"""A full disk under SQLite: the write that does not fit fails with a clear error, every
event acknowledged before it is kept, the file passes `PRAGMA integrity_check`, and work goes
on once there is room again. Simulated with `PRAGMA max_page_count`, and for real on a small
tmpfs when this machine lets the test mount one (root)."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError

from leadrules.engine.clock import SimulatedClock
from leadrules.engine.daemon.service import Service
from leadrules.engine.daemon.store import Store
from leadrules.engine.language.loader import load_rules
from tests.daemon.harness import ROOT, Daemon
from tests.receivers import HttpReceiver

pytestmark = pytest.mark.integration


def batch(n: int, tag: str) -> list[dict[str, Any]]:
    return [
        {"type": "track", "userId": f"u-{tag}-{i % 7}", "event": "Pricing Viewed",
         "messageId": f"{tag}-{i}", "properties": {"pad": "x" * 400},
         "timestamp": "2026-03-04T10:00:00Z"}
        for i in range(n)
    ]  # fmt: skip


def integrity(store: Store) -> str:
    with store.engine.connect() as conn:
        return str(conn.execute(text("PRAGMA integrity_check")).scalar())


def stored_ids(store: Store) -> set[str]:
    with store.engine.connect() as conn:
        return {row[0] for row in conn.execute(text("SELECT message_id FROM event"))}


def test_a_full_database_refuses_the_write_clearly_and_keeps_what_it_acknowledged(
    tmp_path: Path,
) -> None:
    limit = {"pages": 200}  # 200 pages of 4 KiB: about 800 KiB of database

    store = Store(f"sqlite:///{tmp_path}/lr.db")

    @event.listens_for(store.engine, "connect")
    def _cap(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(f"PRAGMA max_page_count = {limit['pages']}")

    store.migrate()
    service = Service(store, load_rules(ROOT / "rules", ROOT / "config")[0], SimulatedClock(0))
    acknowledged: set[str] = set()
    with pytest.raises(OperationalError) as full:
        for n in range(1000):
            messages = batch(20, f"b{n}")
            assert service.ingest(messages).errors == []
            acknowledged |= {m["messageId"] for m in messages}
    assert "database or disk is full" in str(full.value.orig)
    assert len(acknowledged) > 100
    assert stored_ids(store) == acknowledged  # the failed batch left nothing half-written
    assert integrity(store) == "ok"
    # Evaluation cannot write its results either: it fails whole and the events stay pending.
    with pytest.raises(OperationalError):
        service.process_pending()
    assert service.counts()["pending_events"] == len(acknowledged)
    # Room again (a bigger limit on new connections): everything is evaluated, ingest goes on.
    limit["pages"] = 100_000
    store.engine.dispose()
    assert service.process_pending() == len(acknowledged)
    assert service.ingest(batch(5, "after")).accepted == 5
    assert integrity(store) == "ok"
    store.dispose()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command: the tmpfs variant needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_the_daemon_on_a_full_disk_refuses_batches_loses_nothing_and_recovers(
    tmp_path: Path, small_disk: Path, http: HttpReceiver
) -> None:
    daemon = Daemon(tmp_path / "d", f"sqlite:///{small_disk}/lr.db", http.url)
    (tmp_path / "d").mkdir()
    daemon.prepare()
    daemon.start()
    try:
        acknowledged: set[str] = set()
        refused = None
        for n in range(2000):
            messages = batch(20, f"{uuid.uuid4().hex[:6]}-{n}")
            response = daemon.post("/v1/batch", {"batch": messages})
            if response.status_code != 200:
                refused = response
                break
            acknowledged |= {m["messageId"] for m in messages}
        assert refused is not None, "a 3 MB disk never filled up"
        assert refused.status_code >= 500  # not acknowledged: the client keeps the batch
        assert len(acknowledged) > 100
        # Room again: the same daemon, not restarted, takes the refused batch.
        subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
        retry = daemon.post("/v1/batch", {"batch": batch(20, "after")})
        assert retry.status_code == 200, retry.text
        daemon.settle(timeout=60)
    finally:
        daemon.stop()
    store = Store(f"sqlite:///{small_disk}/lr.db")
    assert acknowledged <= stored_ids(store)
    assert integrity(store) == "ok"
    store.dispose()
    log = (tmp_path / "d" / "daemon.log").read_text()
    assert "database or disk is full" in log or refused.status_code == 503
    print(f"disk full: answered {refused.status_code} {refused.text[:120]!r}")
