"""`leadrules check` on accounts: the `accounts:` section and account triggers, every problem
as `path:line:col: message`; the JSON Schema holds the new keys."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from leadrules.engine.language.loader import check, load_rules
from leadrules.engine.language.schema import json_schema

CHANNELS = "channels:\n  sales: {adapter: console}\n  email: {adapter: console}\n"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rules" / "templates").mkdir(parents=True)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "channels.yaml").write_text(CHANNELS)
    (tmp_path / "rules" / "templates" / "hello.md").write_text("Hi {{ account.id }}\n")
    return tmp_path


def problems(project: Path, files: dict[str, str]) -> list[str]:
    for name, text in files.items():
        (project / "rules" / name).write_text(textwrap.dedent(text).lstrip("\n"))
    return [str(p) for p in check(Path("rules"), Path("config"))]


def one(project: Path, text: str) -> list[str]:
    return problems(project, {"r.yaml": text})


VALID = """
accounts:
  top: 2
  fit:
    - id: enterprise
      when: {trait: {employees: {at_least: 1000}}}
      points: 30
  mql_threshold: 150
  on_mql:
    - notify: {channel: sales, template: hello}
triggers:
  - id: surge
    scope: account
    when: {page: {path: /pricing}, times: 3, within: 7d, distinct: prospects}
    cooldown: 30d
    then:
      - notify: {channel: sales, template: hello}
"""


def test_a_valid_accounts_section_and_account_trigger_compile(project: Path) -> None:
    assert one(project, VALID) == []
    (project / "rules" / "r.yaml").write_text(VALID)
    rules, _ = load_rules(Path("rules"), Path("config"))
    assert rules.accounts is not None
    assert (rules.accounts.top, rules.accounts.mql_threshold) == (2, 150)
    assert [(f.id, f.points, f.is_fit) for f in rules.accounts.fit] == [("enterprise", 30, True)]
    assert [a.template for a in rules.accounts.on_mql] == ["hello"]
    (surge,) = rules.triggers
    assert (surge.scope, surge.distinct, surge.times) == ("account", True, 3)


def test_account_triggers_alone_use_accounts_with_the_defaults(project: Path) -> None:
    text = VALID[VALID.index("triggers:") :]
    (project / "rules" / "r.yaml").write_text(text)
    rules, _ = load_rules(Path("rules"), Path("config"))
    assert rules.accounts is not None
    assert (rules.accounts.top, rules.accounts.fit, rules.accounts.mql_threshold) == (3, (), None)


def test_rules_without_accounts_have_none(project: Path) -> None:
    (project / "rules" / "r.yaml").write_text(
        "triggers:\n  - {id: t, when: {event: X}, then: [{notify: {channel: sales, template: hello}}]}\n"
    )
    rules, _ = load_rules(Path("rules"), Path("config"))
    assert rules.accounts is None
    assert rules.triggers[0].scope == "prospect"


def test_problems_in_the_accounts_section_are_positioned(project: Path) -> None:
    found = one(
        project,
        """
        accounts:
          top: 0
          fit:
            - id: big
              when: {event: Signed Up, trait: {employees: {at_leest: 5}}}
              points: 10
          mql_threshold: 100
          on_mql:
            - send: {channel: email, template: hello}
            - notify: {channel: slak, template: hullo}
          cooldown: 3d
        """,
    )
    assert found == [
        "rules/r.yaml:2:8: top: input should be greater than or equal to 1",
        "rules/r.yaml:11:3: unknown key 'cooldown'",
    ]


def test_an_accounts_fit_rule_takes_traits_only(project: Path) -> None:
    found = one(
        project,
        """
        accounts:
          fit:
            - id: big
              when: {event: Signed Up, trait: {employees: {at_leest: 5}}}
              points: 10
        """,
    )
    assert any(p.startswith("rules/r.yaml:4:14: ") and "event" in p for p in found), found


def test_account_actions_only_notify(project: Path) -> None:
    found = one(
        project,
        """
        accounts:
          mql_threshold: 100
          on_mql:
            - send: {channel: email, template: hello}
            - notify: {channel: slak, template: hello}
        triggers:
          - id: surge
            scope: account
            when: {page: {}, times: 2, within: 1d}
            then:
              - start_sequence: nurture
        """,
    )
    assert "rules/r.yaml:4:7: accounts.on_mql only notifies sales: use notify, not send" in found
    assert any(p.startswith("rules/r.yaml:5:25: unknown channel 'slak'") for p in found), found
    assert (
        "rules/r.yaml:11:9: an account trigger only notifies sales: use notify, not "
        "start_sequence" in found
    )


def test_account_trigger_shape_problems(project: Path) -> None:
    found = one(
        project,
        """
        triggers:
          - id: a
            when: {page: {}, times: 2, within: 1d, distinct: prospects}
            then: [{notify: {channel: sales, template: hello}}]
          - id: b
            scope: account
            when: {page: {}, distinct: prospects, stage: mql}
            unless: {page: {}, within: 1d}
            then: [{notify: {channel: sales, template: hello}}]
          - id: c
            scope: acount
            when: {page: {}}
            then: [{notify: {channel: sales, template: hello}}]
          - id: d
            scope: account
            when: {page: {}, times: 2, within: 1d, distinct: people}
            then: [{notify: {channel: sales, template: hello}}]
        """,
    )
    assert "rules/r.yaml:3:44: distinct is for account triggers: add scope: account" in found
    assert "rules/r.yaml:7:22: distinct needs times and within" in found
    assert any(p.startswith("rules/r.yaml:7:43: stage is the prospect's") for p in found), found
    assert "rules/r.yaml:8:5: an account trigger has no unless (absence)" in found
    assert any(p.startswith("rules/r.yaml:11:12: ") and "scope" in p for p in found), found
    assert any(p.startswith("rules/r.yaml:16:54: ") and "distinct" in p for p in found), found


def test_accounts_may_be_defined_once(project: Path) -> None:
    found = problems(
        project,
        {"a.yaml": "accounts: {top: 2}\n", "b.yaml": "accounts: {top: 3}\n"},
    )
    assert found == ["rules/b.yaml:1:1: accounts is already defined at rules/a.yaml:1:1"]


def test_fit_ids_are_unique_across_files(project: Path) -> None:
    found = problems(
        project,
        {
            "a.yaml": "scoring:\n  rules:\n    - {id: big, when: {trait: {x: 1}}, points: 1}\n",
            "b.yaml": "accounts:\n  fit:\n    - {id: big, when: {trait: {y: 1}}, points: 1}\n",
        },
    )
    assert found == ["rules/b.yaml:3:12: duplicate id 'big' (first defined at rules/a.yaml:3:12)"]


def test_the_schema_holds_the_account_keys() -> None:
    schema = json_schema()
    assert "accounts" in schema["properties"]
    defs = schema["$defs"]
    assert set(defs["AccountsModel"]["properties"]) == {"top", "fit", "mql_threshold", "on_mql"}
    assert "scope" in defs["TriggerModel"]["properties"]
    assert "distinct" in defs["When"]["properties"]


def test_leadrules_check_reports_account_problems_on_the_command_line(project: Path) -> None:
    (project / "rules" / "r.yaml").write_text(
        "accounts:\n  top: 2\n  on_mql:\n    - send: {channel: email, template: hello}\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "leadrules.engine.cli", "check"],
        capture_output=True,
        text=True,
        env={**os.environ},
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        "rules/r.yaml:4:7: accounts.on_mql only notifies sales: use notify, not send"
    ]
    schema = subprocess.run(
        [sys.executable, "-m", "leadrules.engine.cli", "schema"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "AccountsModel" in json.loads(schema.stdout)["$defs"]
