"""`leadrules report --shadow` where the daemon's shadow did not run (given files, or a
database without recorded shadow decisions): the log is replayed in received order under
live's rules and the candidate's (`shadow: DIR`), and the difference shown. Nothing of the
shadow's is delivered: it is a replay, the daemon's outbox never sees it. The daemon's own
shadow: test_shadow_daemon.py and test_shadow_runner.py."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from leadrules.engine.clock import SimulatedClock
from leadrules.engine.daemon.service import Service
from leadrules.engine.daemon.store import Store
from leadrules.engine.language.loader import load_rules
from leadrules.engine.timefmt import parse_timestamp

ROOT = Path(__file__).resolve().parents[2]


def _playbook(tmp_path: Path) -> Path:
    """The example rules as live, a copy as shadow whose pricing trigger needs 2 visits."""
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    shutil.copytree(ROOT / "config", tmp_path / "config")
    shutil.copytree(ROOT / "rules", tmp_path / "candidate")
    triggers = tmp_path / "candidate" / "triggers.yaml"
    triggers.write_text(triggers.read_text().replace("times: 3", "times: 2", 1))
    settings = tmp_path / "config" / "leadrules.yaml"
    url = f"sqlite:///{tmp_path}/leadrules.db"
    settings.write_text(
        settings.read_text().replace(
            "database_url: sqlite:///var/leadrules.db", f"database_url: {url}"
        )
        + "shadow: candidate\n"
    )
    return tmp_path


def _report(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "leadrules.engine.cli", "report", "--shadow", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_report_shadow_shows_would_have_decisions_and_the_difference_to_live(
    tmp_path: Path,
) -> None:
    root = _playbook(tmp_path)
    store = Store(f"sqlite:///{root}/leadrules.db")
    store.migrate()
    rules, _ = load_rules(root / "rules", root / "config")
    service = Service(store, rules, SimulatedClock(parse_timestamp("2026-03-10T00:00:00Z")))
    visits = [
        {
            "type": "page",
            "userId": "u1",
            "timestamp": f"2026-03-0{d}T10:00:00Z",
            "messageId": f"m{d}",
            "properties": {"path": "/pricing"},
        }
        for d in (1, 2)
    ]
    service.ingest(visits)
    service.process_pending()
    store.dispose()
    done = _report(root)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    # Two pricing visits: the shadow (times: 2) notifies sales, enrols and sends; live nothing.
    n = len(lines) - 1
    assert lines[0] == f"shadow: {n} decision(s), live: 0; {n} would have, 0 live only"
    assert n >= 3 and all(line.startswith("+ ") for line in lines[1:])
    assert '"action":"notify","rule":"pricing-page-3x"' in lines[1]


def test_report_shadow_without_the_setting_says_what_to_set(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    shutil.copytree(ROOT / "config", tmp_path / "config")
    done = _report(tmp_path, str(ROOT / "examples" / "events.jsonl"))
    assert done.returncode == 1
    assert "set `shadow: DIR` in config/leadrules.yaml" in done.stderr


def test_report_shadow_over_files_and_identical_rules_show_no_difference(tmp_path: Path) -> None:
    root = _playbook(tmp_path)
    shutil.rmtree(root / "candidate")
    shutil.copytree(ROOT / "rules", root / "candidate")
    done = _report(root, str(ROOT / "examples" / "events.jsonl"))
    assert done.returncode == 0, done.stderr
    [line] = done.stdout.splitlines()
    live = int(line.split("live: ")[1].split(";")[0])
    assert live > 20
    assert line == f"shadow: {live} decision(s), live: {live}; 0 would have, 0 live only"
