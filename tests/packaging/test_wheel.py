"""The wheel is what users install: build it, install it into a fresh virtualenv, and start the
daemon from a folder that holds only `rules/` and `config/`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.receivers import free_port

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
        check=True,
        timeout=300,
    )
    (found,) = out.glob("leadrules-*.whl")
    return found


def test_the_wheel_installs_one_import_package_with_its_migrations_and_licence(
    wheel: Path,
) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if ".dist-info" not in n.split("/")[0]}
    assert top == {"leadrules"}
    assert "leadrules/engine/daemon/migrations/script.py.mako" in names
    assert "leadrules/engine/daemon/migrations/env.py" in names
    assert any(n.startswith("leadrules/engine/daemon/migrations/versions/0001") for n in names)
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "leadrules = leadrules.engine.cli:main" in text
    assert "webhook = leadrules.adapters.webhook:WebhookAdapter" in text


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the wheel and its dependencies from the package index."""
    env_dir = tmp_path_factory.mktemp("venv")
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)],
        check=True,
        timeout=900,
    )
    return env_dir / "bin"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Path]:
    """A user's folder: only `rules/` and `config/`, copied from the repository."""
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    shutil.copytree(ROOT / "config", tmp_path / "config")
    yield tmp_path


def test_the_installed_daemon_starts_from_a_folder_with_only_rules_and_config(
    installed: Path, site: Path
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")} | {
        "LEADRULES_WRITE_KEY": "wheel-key",
        "LEADRULES_LOG_LEVEL": "WARNING",
    }
    check = subprocess.run(
        [str(installed / "leadrules"), "check"], cwd=site, env=env, capture_output=True, timeout=120
    )
    assert check.returncode == 0, check.stdout + check.stderr
    log = (site / "daemon.log").open("wb")
    process = subprocess.Popen(
        [str(installed / "leadrules"), "run", "--port", str(port)],
        cwd=site,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        status = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code
                if status == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert status == 200, (site / "daemon.log").read_text()
        answer = httpx.post(
            f"http://127.0.0.1:{port}/v1/track",
            auth=("wheel-key", ""),
            json={"userId": "u-1", "event": "Demo Requested"},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        assert (site / "var" / "leadrules.db").is_file()
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
    # The installed package carries no trace of the repository it was built from.
    probe = subprocess.run(
        [str(installed / "python"), "-c", "import leadrules.engine as e; print(e.__file__)"],
        cwd=site,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "site-packages" in probe.stdout, probe.stdout + probe.stderr
