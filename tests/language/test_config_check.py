"""`leadrules check` checks the whole of `config/`: the daemon's settings as well as channels,
each problem once, at its position."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from leadrules.engine.language.loader import check

ROOT = Path(__file__).resolve().parents[2]
RULES = """\
triggers:
  - id: a
    when: {event: A}
    then:
      - notify: {channel: sales, template: hello}
  - id: b
    when: {event: B}
    then:
      - notify: {channel: sales, template: hello}
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rules" / "templates").mkdir(parents=True)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "channels.yaml").write_text("channels:\n  sales: {adapter: console}\n")
    (tmp_path / "rules" / "templates" / "hello.md").write_text("Hi {{ traits.name }}\n")
    (tmp_path / "rules" / "r.yaml").write_text(RULES)
    return tmp_path


def found() -> list[str]:
    return [str(p) for p in check(Path("rules"), Path("config"))]


def test_a_typo_in_the_daemon_settings_fails_check(project: Path) -> None:
    Path("config/leadrules.yaml").write_text("ingest:\n  prot: 8080\n")
    assert found() == ["config/leadrules.yaml:2:3: unknown setting 'prot' (did you mean 'port'?)"]


def test_a_wrong_type_in_the_daemon_settings_fails_check(project: Path) -> None:
    Path("config/leadrules.yaml").write_text("dispatch:\n  max_attempts: many\n")
    assert found() == [
        "config/leadrules.yaml:2:17: max_attempts: input should be a valid integer, "
        "unable to parse string as an integer"
    ]


def test_hostile_yaml_in_the_settings_is_positioned(project: Path) -> None:
    Path("config/leadrules.yaml").write_text("base: &b {port: 1}\ningest:\n  <<: *b\n")
    assert found() == [
        "config/leadrules.yaml:3:3: merge keys (<<) are not supported: write the keys out, "
        "or share a whole value"
    ]


def test_a_settings_file_holding_only_null_is_the_defaults(project: Path) -> None:
    Path("config/leadrules.yaml").write_text("~\n")
    assert found() == []


def test_a_misnamed_config_file_is_reported(project: Path) -> None:
    Path("config/leadrule.yaml").write_text("ingest: {port: 9000}\n")
    Path("config/notes.yaml").write_text("anything: here\n")  # not close to a config file name
    assert found() == [
        "config/leadrule.yaml:1:1: unknown config file 'leadrule.yaml' "
        "(did you mean 'leadrules.yaml'?)"
    ]


def test_an_invalid_channel_is_reported_once_not_at_every_rule(project: Path) -> None:
    Path("config/channels.yaml").write_text(
        "channels:\n  sales: {adapter: smtp, host: mail.example.com, sendr: a@b.example}\n"
    )
    assert found() == [
        "config/channels.yaml:2:10: missing setting 'sender'",
        "config/channels.yaml:2:50: unknown setting 'sendr' (did you mean 'sender'?)",
    ]


def test_an_unknown_adapter_is_reported_once(project: Path) -> None:
    Path("config/channels.yaml").write_text("channels:\n  sales: {adapter: slak}\n")
    assert found() == ["config/channels.yaml:2:20: unknown adapter 'slak' (did you mean 'slack'?)"]


def test_an_unreadable_channels_file_hides_channel_references(project: Path) -> None:
    Path("config/channels.yaml").write_text("channels: [\n")
    problems = found()
    assert len(problems) == 1 and problems[0].startswith("config/channels.yaml:")
    assert "unknown channel" not in problems[0]


def test_a_channel_never_declared_is_still_unknown(project: Path) -> None:
    Path("config/channels.yaml").write_text("channels:\n  email: {adapter: console}\n")
    assert found() == [
        "rules/r.yaml:5:27: unknown channel 'sales'",
        "rules/r.yaml:9:27: unknown channel 'sales'",
    ]


def test_check_command_reports_the_settings_typo(project: Path) -> None:
    Path("config/leadrules.yaml").write_text("databse_url: sqlite:///x.db\n")
    done = subprocess.run(
        [sys.executable, "-m", "leadrules.engine.cli", "check"],
        cwd=project, capture_output=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120,
        check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout
    assert done.stdout.decode().splitlines() == [
        "config/leadrules.yaml:1:1: unknown setting 'databse_url' (did you mean 'database_url'?)"
    ]
    assert "Traceback" not in done.stderr.decode()


def test_settings_that_run_would_refuse_are_refused_by_check(project: Path) -> None:
    Path("config/leadrules.yaml").write_text(
        "ingest: {port: 99999}\ndispatch: {max_attempts: 0, backoff_base: 2 seconds}\n"
    )
    assert found() == [
        "config/leadrules.yaml:1:16: port: input should be less than or equal to 65535",
        "config/leadrules.yaml:2:26: max_attempts: input should be greater than or equal to 1",
        "config/leadrules.yaml:2:43: duration must be an integer and a unit (s, m, h, d, w) "
        "such as '30d', got '2 seconds'",
    ]
