"""`leadrules check`: every problem as `path:line:col: message`, all at once."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from leadrules.engine.core.ruleset import FieldCond, Op
from leadrules.engine.errors import RuleError
from leadrules.engine.language.loader import check, load_rules

CHANNELS = "channels:\n  sales: {adapter: console}\n  email: {adapter: console}\n"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rules" / "templates").mkdir(parents=True)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "channels.yaml").write_text(CHANNELS)
    for name in ("hello", "bye"):
        (tmp_path / "rules" / "templates" / f"{name}.md").write_text(
            "Hi {{ traits.name }} ({{ score }})\n"
        )
    return tmp_path


def problems(project: Path, files: dict[str, str]) -> list[str]:
    for name, text in files.items():
        path = project / "rules" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return [str(p) for p in check(Path("rules"), Path("config"))]


def one(project: Path, text: str) -> list[str]:
    return problems(project, {"r.yaml": text})


def test_valid_rules_have_no_problems(project: Path) -> None:
    assert (
        one(
            project,
            """
        triggers:
          - id: t
            when: {event: Demo Requested}
            then:
              - notify: {channel: sales, template: hello}
        """,
        )
        == []
    )


def test_unknown_key_with_did_you_mean(project: Path) -> None:
    assert one(
        project,
        """
        triggers:
          - id: t
            when: {event: X}
            cooldwn: 30d
            then: []
        """,
    ) == ["rules/r.yaml:4:5: unknown key 'cooldwn' (did you mean 'cooldown'?)"]


def test_unknown_top_level_key(project: Path) -> None:
    assert one(project, "trigers: []\n") == [
        "rules/r.yaml:1:1: unknown key 'trigers' (did you mean 'triggers'?)"
    ]


def test_unknown_operator_with_did_you_mean(project: Path) -> None:
    assert one(
        project,
        """
        scoring:
          rules:
            - id: p
              when: {page: {path: {glb: "/pricing*"}}}
              points: 1
        """,
    ) == ["rules/r.yaml:4:28: unknown operator 'glb' (did you mean 'glob'?)"]


def test_unknown_page_field(project: Path) -> None:
    assert one(
        project,
        """
        scoring:
          rules:
            - {id: p, when: {page: {pth: /x}}, points: 1}
        """,
    ) == [
        "rules/r.yaml:3:29: unknown page field 'pth' (did you mean 'path'?); use one of path, url, title, referrer, search, name"
    ]


def test_missing_key_is_reported_at_its_parent(project: Path) -> None:
    assert one(
        project,
        """
        scoring:
          rules:
            - id: p
              when: {event: X}
        """,
    ) == ["rules/r.yaml:3:7: missing key 'points'"]


def test_wrong_type(project: Path) -> None:
    assert one(
        project,
        """
        scoring:
          rules:
            - {id: p, when: {event: X}, points: ten}
        """,
    ) == ["rules/r.yaml:3:41: points: input should be a valid integer"]


@pytest.mark.parametrize("bad", ["7days", "1.5h", "7", "0d"])
def test_bad_durations(project: Path, bad: str) -> None:
    found = one(
        project,
        f"""
        scoring:
          rules:
            - {{id: p, when: {{event: X}}, points: 1, expires_after: {bad}}}
        """,
    )
    assert len(found) == 1 and found[0].startswith("rules/r.yaml:3:59: duration must be")


def test_bad_regex(project: Path) -> None:
    found = one(
        project,
        """
        scoring:
          rules:
            - {id: p, when: {trait: {title: {matches: "(vp"}}}, points: 1}
        """,
    )
    assert found == [
        "rules/r.yaml:3:47: matches: invalid regular expression: missing ), unterminated subpattern at position 0"
    ]


def test_times_and_within_go_together(project: Path) -> None:
    assert one(
        project,
        """
        triggers:
          - id: t
            when: {event: X, times: 3}
            then: []
        """,
    ) == ["rules/r.yaml:3:11: times and within go together: add within"]


def test_times_is_only_for_triggers(project: Path) -> None:
    assert one(
        project,
        """
        scoring:
          rules:
            - {id: p, when: {event: X, times: 2, within: 7d}, points: 1}
        """,
    ) == [
        "rules/r.yaml:3:32: times is only for triggers",
        "rules/r.yaml:3:42: within is only for triggers",
    ]


def test_clause_shape_problems(project: Path) -> None:
    assert one(
        project,
        """
        triggers:
          - id: a
            when: {event: X, page: {}}
            then: []
          - id: b
            when: {trait: {title: VP}}
            then: []
          - id: c
            when: {event: X}
            unless: {event: Y}
            then: []
        """,
    ) == [
        "rules/r.yaml:3:22: a clause has either event or page, not both",
        "rules/r.yaml:6:11: needs event or page (only scoring fit rules may use trait alone)",
        "rules/r.yaml:10:13: missing key 'within'",
    ]


def test_duplicate_ids_across_files(project: Path) -> None:
    found = problems(
        project,
        {
            "a.yaml": "scoring:\n  rules:\n    - {id: dup, when: {event: X}, points: 1}\n",
            "b/c.yaml": "triggers:\n  - id: dup\n    when: {event: X}\n    then: []\n",
        },
    )
    assert found == ["rules/b/c.yaml:2:9: duplicate id 'dup' (first defined at rules/a.yaml:3:12)"]


def test_lifecycle_in_two_files(project: Path) -> None:
    found = problems(
        project,
        {"a.yaml": "lifecycle: {mql_threshold: 1}\n", "b.yaml": "lifecycle: {mql_threshold: 2}\n"},
    )
    assert found == ["rules/b.yaml:1:1: lifecycle is already defined at rules/a.yaml:1:1"]


def test_unknown_references_with_did_you_mean(project: Path) -> None:
    assert one(
        project,
        """
        triggers:
          - id: t
            when: {event: X}
            then:
              - notify: {channel: slaes, template: helo}
              - start_sequence: nurtur
        sequences:
          nurture:
            exit_when: [{stage: {in: [sal, customr]}}]
            steps: [{wait: 1d}]
        """,
    ) == [
        "rules/r.yaml:5:27: unknown channel 'slaes' (did you mean 'sales'?)",
        "rules/r.yaml:5:44: unknown template 'helo' (did you mean 'hello'?)",
        "rules/r.yaml:6:25: unknown sequence 'nurtur' (did you mean 'nurture'?)",
        "rules/r.yaml:9:36: unknown stage 'customr' (did you mean 'customer'?); stages are lead, mql, sal, sql, customer, recycled",
    ]


def test_a_replay_only_warns_about_channels_and_templates(project: Path) -> None:
    one(
        project,
        """
        triggers:
          - id: t
            when: {event: X}
            then:
              - notify: {channel: nowhere, template: nothing}
        """,
    )
    rules, warnings = load_rules(Path("rules"), Path("config"), references="warn")
    assert [str(w) for w in warnings] == [
        "rules/r.yaml:5:27: unknown channel 'nowhere'",
        "rules/r.yaml:5:46: unknown template 'nothing'",
    ]
    assert rules.triggers[0].actions[0].channel == "nowhere"


def test_templates_that_do_not_compile_or_use_unknown_variables(project: Path) -> None:
    (project / "rules" / "templates" / "broken.md").write_text("Hi\n{% if score %}\n")
    (project / "rules" / "templates" / "odd.txt").write_text(
        "Hi {{ prospect }}\nscore {{ scroe }}\n"
    )
    broken, odd = one(project, "")
    assert broken.startswith(
        "rules/templates/broken.md:2:1: template does not compile: Unexpected end of template"
    )
    assert odd.startswith(
        "rules/templates/odd.txt:2:10: unknown template variable 'scroe'; templates get account, at, channel,"
    )


def test_yaml_syntax_errors_and_duplicate_keys(project: Path) -> None:
    found = problems(
        project,
        {
            "a.yaml": "triggers: [\n",
            "b.yaml": "lifecycle:\n  mql_threshold: 1\n  mql_threshold: 2\n",
        },
    )
    assert found[0].startswith("rules/a.yaml:2:1: invalid YAML")
    assert found[1] == "rules/b.yaml:3:3: duplicate key 'mql_threshold'"


def test_every_problem_is_reported_at_once(project: Path) -> None:
    found = problems(
        project,
        {
            "a.yaml": "scoring:\n  rules:\n    - {id: a, when: {event: X}, points: 1, expires_after: 7days}\n",
            "b.yaml": "triggers:\n  - id: t\n    when: {event: X}\n    coldown: 1d\n    then: []\n",
        },
    )
    assert len(found) == 2


def test_a_rule_set_compiles_conditions_as_written(project: Path) -> None:
    one(
        project,
        """
        scoring:
          expires_after: 90d
          rules:
            - id: big
              when: {trait: {company.size: {at_least: 200, not: {in: [500, 600]}}}}
              points: 15
            - {id: p, when: {page: {path: /pricing}}, points: 10}
        """,
    )
    rules, _ = load_rules(Path("rules"), Path("config"))
    big, pricing = rules.scoring
    assert big.is_fit and big.expires_after_us is None
    assert big.match.trait == (
        FieldCond(("company", "size"), (Op("at_least", 200), Op("not", (Op("in", (500, 600)),)))),
    )
    assert pricing.expires_after_us == 90 * 86400 * 1_000_000


def test_unknown_adapter_and_settings_in_channels(project: Path) -> None:
    (project / "config" / "channels.yaml").write_text(
        "channels:\n  sales: {adapter: slak}\n  email: {adapter: console, colour: red}\n"
    )
    assert one(project, "") == [
        "config/channels.yaml:2:20: unknown adapter 'slak' (did you mean 'slack'?)",
        "config/channels.yaml:3:29: unknown setting 'colour'",
    ]


def test_check_command_exit_codes(project: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    ok = subprocess.run(
        [sys.executable, "-m", "leadrules.engine.cli", "check"],
        capture_output=True,
        env=env,
        timeout=60,
    )
    assert ok.returncode == 0 and ok.stdout == b""
    (project / "rules" / "r.yaml").write_text(
        "triggers:\n  - id: t\n    when: {event: X}\n    cooldwn: 1d\n    then: []\n"
    )
    bad = subprocess.run(
        [sys.executable, "-m", "leadrules.engine.cli", "check"],
        capture_output=True,
        env=env,
        timeout=60,
    )
    assert bad.returncode == 1
    assert bad.stdout.decode().splitlines() == [
        "rules/r.yaml:4:5: unknown key 'cooldwn' (did you mean 'cooldown'?)"
    ]
    assert b"Traceback" not in bad.stderr


def test_load_rules_raises_with_all_problems(project: Path) -> None:
    one(project, "trigers: []\n")
    with pytest.raises(RuleError) as caught:
        load_rules(Path("rules"), Path("config"))
    assert len(caught.value.problems) == 1
