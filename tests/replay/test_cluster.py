"""`replay --cluster` and `backtest --cluster` on a real local Dask cluster: a scheduler and
two worker processes (one thread each) on 127.0.0.1, driven through the command line, give
the bytes of one process."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import distributed
import orjson
import pytest

from bench.generate import generate
from leadrules.engine.errors import LeadrulesError
from leadrules.engine.language.loader import load_rules
from leadrules.engine.replay.cluster import connect
from leadrules.engine.replay.sources import EventFile
from leadrules.engine.replay.workers import replay_workers

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "leadrules.engine.cli"]
RULES = ["--rules", str(ROOT / "rules"), "--config", str(ROOT / "config")]


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    with distributed.LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cluster") / "events.jsonl"
    messages = generate(8000, 13, prospects=200, shuffle=0.05, duplicates=0.05)
    path.write_bytes(b"".join(orjson.dumps(m) + b"\n" for m in messages))
    return path


def _run(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*CLI, *args], capture_output=True, cwd=ROOT, check=False)


def _summary(done: subprocess.CompletedProcess[bytes]) -> list[bytes]:
    return [x for x in done.stderr.splitlines() if not x.startswith(b"speed:")]


def test_replay_on_the_cluster_gives_the_bytes_of_one_process(
    scheduler: str, history: Path
) -> None:
    one = _run("replay", str(history), "--workers", "1", *RULES)
    spread = _run("replay", str(history), "--cluster", scheduler, *RULES)
    assert one.returncode == 0, one.stderr.decode()
    assert spread.returncode == 0, spread.stderr.decode()
    assert one.stdout.count(b"\n") > 100
    assert spread.stdout == one.stdout
    assert _summary(spread) == _summary(one)


def test_more_partitions_than_workers_give_the_same_bytes(scheduler: str, history: Path) -> None:
    rules, _ = load_rules(ROOT / "rules", ROOT / "config", references="warn")
    one, five = io.BytesIO(), io.BytesIO()
    source = [EventFile(str(history))]
    replay_workers(source, rules, one, workers=1, until=None)
    result = replay_workers(source, rules, five, workers=5, cluster=scheduler)
    assert five.getvalue() == one.getvalue()
    assert result.stats.events > 7000


def test_backtest_on_the_cluster_writes_the_json_of_one_process(
    scheduler: str, history: Path, tmp_path: Path
) -> None:
    candidate = tmp_path / "candidate"
    shutil.copytree(ROOT / "rules", candidate / "rules")
    lifecycle = candidate / "rules" / "lifecycle.yaml"
    lifecycle.write_text(lifecycle.read_text().replace("mql_threshold: 80", "mql_threshold: 60"))
    shutil.copytree(ROOT / "config", candidate / "config")
    common = ["backtest", "--baseline", str(ROOT), "--candidate", str(candidate), str(history)]
    one = _run(*common, "--workers", "1", "--json", "-", "--quiet")
    spread = _run(*common, "--cluster", scheduler, "--json", "-", "--quiet")
    assert one.returncode == 0, one.stderr.decode()
    assert spread.returncode == 0, spread.stderr.decode()
    assert spread.stdout == one.stdout
    figures = json.loads(one.stdout)
    assert figures["candidate"]["mqls"] > figures["baseline"]["mqls"] > 0


def test_a_scheduler_that_is_not_there_is_an_error_naming_it() -> None:
    with pytest.raises(LeadrulesError, match=r"no Dask scheduler at tcp://127\.0\.0\.1:9"):
        connect("tcp://127.0.0.1:9", timeout=2)
