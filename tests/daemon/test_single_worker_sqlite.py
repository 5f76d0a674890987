"""SQLite takes one worker: a second `leadrules run` on the same database file stops with an
error that says why and what to use instead, and the first keeps running; once the first is
gone (even by SIGKILL), a new one starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.daemon.harness import Daemon
from tests.receivers import HttpReceiver

pytestmark = pytest.mark.integration


def test_a_second_worker_on_one_sqlite_file_is_refused(tmp_path: Path, http: HttpReceiver) -> None:
    url = f"sqlite:///{tmp_path}/shared.db"
    first = Daemon(tmp_path / "first", url, http.url)
    second = Daemon(tmp_path / "second", url, http.url)
    for daemon in (first, second):
        daemon.root.mkdir()
        daemon.prepare()
    first.start()
    try:
        with pytest.raises(RuntimeError) as refused:
            second.start()
        assert second.process is not None and second.process.wait(timeout=30) == 1
        assert "SQLite takes one worker; several workers need PostgreSQL" in str(refused.value)
        assert "Traceback" not in str(refused.value)
        assert first.health()["status"] == "ok"
        first.kill()
        second.start()  # the lock went with the killed process
        assert second.health()["status"] == "ok"
    finally:
        first.stop()
        second.stop()
