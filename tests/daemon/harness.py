"""A real `leadrules run` in a subprocess, with its own rules, config, database and port."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.receivers import free_port

ROOT = Path(__file__).resolve().parents[2]
KEY = "test-write-key"


@dataclass
class Daemon:
    root: Path
    database_url: str
    hook_url: str
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    # What `python -m` runs: the CLI's `run`, or bench.daemon_profile around it.
    command: tuple[str, ...] = ("leadrules.engine.cli", "run")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def prepare(self) -> None:
        shutil.copytree(ROOT / "rules", self.root / "rules", dirs_exist_ok=True)
        config = self.root / "config"
        config.mkdir(exist_ok=True)
        hook = f'{{adapter: webhook, url: "{self.hook_url}", secret: "${{CRM_SECRET}}"}}'
        channels = "\n".join(
            f"  {name}: {hook}"
            for name in ("sales", "sales-managers", "crm", "email", "digest", "log")
        )
        (config / "channels.yaml").write_text(f"channels:\n{channels}\n")
        (config / "leadrules.yaml").write_text(
            f"database_url: {self.database_url}\n"
            f'ingest: {{host: 127.0.0.1, port: {self.port}, write_keys: ["${{LEADRULES_WRITE_KEY}}"]}}\n'
            "dispatch: {max_attempts: 5, backoff_base: 1s, backoff_max: 2s}\n"
        )

    def start(self) -> None:
        env = dict(
            os.environ,
            PYTHONPATH=str(ROOT),
            LEADRULES_WRITE_KEY=KEY,
            CRM_SECRET="s3cret",
            LEADRULES_LOG_LEVEL="WARNING",
        )
        log = open(self.root / "daemon.log", "ab")  # noqa: SIM115 - handed to the child process
        self.process = subprocess.Popen(
            [sys.executable, "-m", *self.command],
            cwd=self.root,
            env=env,
            stdout=log,
            stderr=log,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError((self.root / "daemon.log").read_text())
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("daemon did not start:\n" + (self.root / "daemon.log").read_text())

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait(timeout=30)

    def post(self, path: str, body: Any, **kw: Any) -> httpx.Response:
        return httpx.post(f"{self.url}{path}", json=body, auth=(KEY, ""), timeout=30, **kw)

    def health(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.url}/health", timeout=5).json())

    def settle(self, timeout: float = 30) -> dict[str, Any]:
        """Wait until every stored event is evaluated and nothing is left to deliver."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.health()
            if status["pending_events"] == 0 and status["outbox_depth"] == 0:
                return status
            time.sleep(0.2)
        raise AssertionError(f"daemon did not settle: {self.health()}")

    def cli(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        return subprocess.run(
            [sys.executable, "-m", "leadrules.engine.cli", *args],
            cwd=self.root,
            env=env,
            capture_output=True,
            timeout=120,
        )
