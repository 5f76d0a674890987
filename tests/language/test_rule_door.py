"""Hostile rule files at `leadrules check`: each is one `path:line:col: message`, never a
traceback or a hang (tags, merge keys, aliases, huge numbers, catastrophic regexes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from leadrules.engine.core.conditions import compile_op, regex_timeouts
from leadrules.engine.core.ruleset import Op
from leadrules.engine.errors import PatternTimeout
from leadrules.engine.language.loader import check, load_rules
from leadrules.engine.language.templates import TEMPLATE_VARIABLES
from leadrules.engine.language.yaml_source import MAX_ALIAS_COPIES

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rules" / "templates").mkdir(parents=True)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "channels.yaml").write_text("channels:\n  sales: {adapter: console}\n")
    (tmp_path / "rules" / "templates" / "hello.md").write_text("Hi {{ traits.name }}\n")
    return tmp_path


def problems(text: str) -> list[str]:
    Path("rules/r.yaml").write_text(textwrap.dedent(text).lstrip("\n"))
    return [str(p) for p in check(Path("rules"), Path("config"))]


NOT_ALLOWED = (
    "is not allowed: files hold plain strings, numbers, booleans, null, lists and mappings"
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "base: &b {x: 1}\nscoring:\n  <<: *b\n",
            "rules/r.yaml:3:3: merge keys (<<) are not supported: write the keys out, "
            "or share a whole value",
        ),
        (
            "scoring:\n  <<: [1, 2]\n",
            "rules/r.yaml:2:3: merge keys (<<) are not supported: write the keys out, "
            "or share a whole value",
        ),
        (
            "triggers:\n  - within: !foo 7d\n",
            f"rules/r.yaml:2:13: unknown tag '!foo' {NOT_ALLOWED}",
        ),
        (
            "x: !!python/name:os.system\n",
            f"rules/r.yaml:1:4: tag '!!python/name:os.system' {NOT_ALLOWED}",
        ),
        (
            "x: !!python/object/apply:os.system [echo]\n",
            f"rules/r.yaml:1:4: tag '!!python/object/apply:os.system' {NOT_ALLOWED}",
        ),
        ("scoring: {expires_after: !!bool 7d}\n", "rules/r.yaml:1:26: '7d' is not a valid !!bool"),
        (
            "lifecycle: {mql_threshold: !!int true}\n",
            "rules/r.yaml:1:28: 'true' is not a valid !!int",
        ),
        ("x: !!timestamp hello\n", "rules/r.yaml:1:4: 'hello' is not a valid !!timestamp"),
        ("x: !!map 1\n", "rules/r.yaml:1:4: tag '!!map' does not fit a plain value"),
        ("x: !!str [1]\n", "rules/r.yaml:1:4: tag '!!str' does not fit a list"),
        ("x: !!set {a}\n", f"rules/r.yaml:1:4: tag '!!set' {NOT_ALLOWED}"),
        (
            "a: &x [*x]\n",
            "rules/r.yaml:1:4: an alias refers to the list or mapping that contains it",
        ),
        (
            "lifecycle: {mql_threshold: " + "9" * 5000 + "}\n",
            "rules/r.yaml:1:28: integer does not fit in 64 bits",
        ),
        (
            "scoring:\n  rules:\n    - {id: p, when: {event: X}, points: 9223372036854775808}\n",
            "rules/r.yaml:3:41: integer does not fit in 64 bits",
        ),
        ("a: 1\n---\nb: 2\n", "rules/r.yaml:2:1: invalid YAML: but found another document"),
        (
            "a: \x00\n",
            "rules/r.yaml:1:4: invalid YAML: control characters are not allowed (#x0000)",
        ),
        ("x:\n" + "".join("  " * i + "- \n" for i in range(1, 150)), None),
    ],
)
def test_hostile_yaml_is_one_positioned_problem(
    project: Path, text: str, expected: str | None
) -> None:
    found = problems(text)
    if expected is None:  # deep nesting: refused somewhere, by position
        assert len(found) == 1 and found[0].startswith("rules/r.yaml:")
        assert "nested" in found[0]
    else:
        assert found == [expected]


@pytest.mark.parametrize("text", ["~\n", "", "# nothing here\n", "null\n"])
def test_a_file_with_no_data_is_an_empty_rule_file(project: Path, text: str) -> None:
    assert problems(text) == []


def test_an_alias_may_share_a_value_once_written(project: Path) -> None:
    assert (
        problems(
            """
        triggers:
          - id: a
            when: {event: A}
            then: &tell-sales
              - notify: {channel: sales, template: hello}
          - id: b
            when: {event: B}
            then: *tell-sales
        """
        )
        == []
    )
    rules, _ = load_rules(Path("rules"), Path("config"))
    assert [t.actions[0].channel for t in rules.triggers] == ["sales", "sales"]


def billion_laughs(levels: int = 9) -> str:
    lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_at_the_value_it_copies(project: Path) -> None:
    text = billion_laughs()
    assert len(text) < 600  # 9**10 values if expanded
    found = problems(text)
    assert len(found) == 1
    assert found[0].startswith("rules/r.yaml:") and (
        f"aliases copy more than {MAX_ALIAS_COPIES} values" in found[0]
    )


NESTED = (
    "matches: nested quantifier can take exponential time: a group repeated without bound holds "
    "a part repeated without bound, with nothing required between them (write `(a+)+` as `a+`, "
    "or require a separator inside the group)"
)


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("(a+)+$", NESTED),
        (r"(\\w+\\s?)+$", NESTED),
        ("(x*)*y", NESTED),
        (
            "[[:alpha:]]",  # a POSIX class to the regex module, a set of `[:alph` to re
            "matches: ambiguous character set (possible nested set at position 1): escape the "
            "character to mean it literally, e.g. `[\\[]`",
        ),
        (
            "a{99999999999}",
            "matches: invalid regular expression: the repetition number is too large",
        ),
        ("a{5000}", "matches: repeat count 5000 is too large (at most 1000)"),
        ("(a{1000}){1000}", "matches: nested repeat counts multiply to 1000000 (at most 100000)"),
        (
            "(vp",
            "matches: invalid regular expression: missing ), unterminated subpattern at position 0",
        ),
    ],
)
def test_costly_or_invalid_regexes_are_refused_where_written(
    project: Path, pattern: str, message: str
) -> None:
    found = problems(
        f"""
        scoring:
          rules:
            - {{id: p, when: {{page: {{path: {{matches: "{pattern}"}}}}}}, points: 1}}
        """
    )
    assert found == [f"rules/r.yaml:3:45: {message}"]


@pytest.mark.parametrize(
    "pattern", [r"(\\s*,\\s*\\w+)*$", "(ab+)*", "^/(pricing|plans)/?$", "(a|aa)+$"]
)
def test_patterns_with_a_separator_or_no_nesting_pass(project: Path, pattern: str) -> None:
    text = f"""
        scoring:
          rules:
            - {{id: p, when: {{page: {{path: {{matches: "{pattern}"}}}}}}, points: 1}}
        """
    assert problems(text) == []


def test_a_search_that_runs_too_long_raises_and_is_counted() -> None:
    before = regex_timeouts()
    slow = compile_op(Op("matches", "(a|aa)+$"))
    with pytest.raises(PatternTimeout) as caught:
        slow("a" * 5000 + "!")
    assert "(a|aa)+$" in str(caught.value)
    assert regex_timeouts() == before + 1
    assert slow("aaaa") is True  # the same pattern still matches what it should
    assert regex_timeouts() == before + 1


def _replay(cwd: Path, *extra: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "leadrules.engine.cli", *extra],
        cwd=cwd, capture_output=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120,
        check=False,
    )  # fmt: skip


def _pathological_project(tmp_path: Path, paths: list[str]) -> None:
    (tmp_path / "rules" / "templates").mkdir(parents=True)
    (tmp_path / "config").mkdir()
    (tmp_path / "rules" / "r.yaml").write_text(
        'scoring:\n  rules:\n    - {id: p, when: {page: {path: {matches: "/(a|aa)+$"}}}, points: 5}\n'
    )
    events = [
        {"type": "page", "userId": f"u{i}", "messageId": f"m{i}",
         "timestamp": f"2026-03-01T10:00:0{i}Z", "properties": {"path": path}}
        for i, path in enumerate(paths, start=1)
    ]  # fmt: skip
    (tmp_path / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))


def test_replay_with_a_badly_backtracking_pattern_decides_what_it_can(tmp_path: Path) -> None:
    """`(a|aa)+$` passes check; a near miss short enough to search in time is no match, and a
    path that matches still scores."""
    _pathological_project(tmp_path, ["/" + "a" * 16 + "!", "/" + "a" * 30])
    done = _replay(tmp_path, "replay", "events.jsonl", "--quiet", "--until", "2026-03-02T00:00:00Z")
    assert done.returncode == 0, done.stderr.decode()
    explained = _replay(tmp_path, "explain", "u2", "events.jsonl", "--json")
    assert json.loads(explained.stdout)["score"] == 5
    loser = _replay(tmp_path, "explain", "u1", "events.jsonl", "--json")
    assert json.loads(loser.stdout)["score"] == 0


def test_replay_stops_on_a_search_past_its_bound_naming_the_message_and_pattern(
    tmp_path: Path,
) -> None:
    """A search that would run for ages is stopped at the bound and the replay says which
    message and pattern, instead of guessing "no match" (which would depend on load)."""
    _pathological_project(tmp_path, ["/" + "a" * 30, "/" + "a" * 5000 + "!"])
    done = _replay(tmp_path, "replay", "events.jsonl", "--quiet", "--until", "2026-03-02T00:00:00Z")
    err = done.stderr.decode()
    assert done.returncode != 0
    assert "m2" in err and "(a|aa)+$" in err, err
    assert "Traceback" not in err


def test_check_in_a_subprocess_prints_positions_not_tracebacks(project: Path) -> None:
    Path("rules/r.yaml").write_text("scoring:\n  <<: [1, 2]\nx: !foo 1\n")
    Path("rules/s.yaml").write_text(billion_laughs())
    done = subprocess.run(
        [sys.executable, "-m", "leadrules.engine.cli", "check"],
        cwd=project, capture_output=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120,
        check=False,
    )  # fmt: skip
    out, err = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == 1 and "Traceback" not in err
    lines = out.splitlines()
    assert lines[0] == (
        "rules/r.yaml:2:3: merge keys (<<) are not supported: write the keys out, or share a "
        "whole value"
    )
    assert lines[1] == f"rules/r.yaml:3:4: unknown tag '!foo' {NOT_ALLOWED}"
    assert lines[2].startswith("rules/s.yaml:") and "alias bomb" in lines[2]


def test_an_unknown_template_variable_is_placed_where_it_is_used(project: Path) -> None:
    """Not at the first line that merely contains the word ("your naem is" in the text)."""
    Path("rules/templates/hello.md").write_text(
        "Subject: Hi {{ traits.name }}\n"
        "\n"
        "Hello, your naem is in the text here.\n"
        "{{ score }} and {% if traits.naem %}{{ naem }}{% endif %}\n"
    )
    assert problems("scoring: {rules: []}\n") == [
        "rules/templates/hello.md:4:40: unknown template variable 'naem'; templates get "
        + ", ".join(sorted(TEMPLATE_VARIABLES))
    ]


def test_numbers_beyond_their_bounds_are_refused_where_written(project: Path) -> None:
    assert problems(
        """
        scoring:
          rules:
            - {id: a, when: {event: X}, points: 1000001, limit: {times: 10001}}
            - {id: b, when: {event: X}, points: 1, expires_after: 36501d}
            - {id: c, when: {event: X}, points: 1, limit: {times: 1, per: 999999999999999999999999999999w}}
        lifecycle:
          mql_threshold: -1000000001
        triggers:
          - {id: t, when: {event: X, times: 10001, within: 1d}, cooldown: 36500d, then: []}
        sequences:
          s:
            steps:
              - wait: 9999999999999999999s
        """
    ) == [
        "rules/r.yaml:3:41: points: input should be less than or equal to 1000000",
        "rules/r.yaml:3:65: times: input should be less than or equal to 10000",
        "rules/r.yaml:4:59: duration must be at most 36500d (100 years), got '36501d'",
        "rules/r.yaml:5:67: duration must be at most 36500d (100 years)",
        "rules/r.yaml:7:18: mql_threshold: input should be greater than or equal to -1000000000",
        "rules/r.yaml:9:37: times: input should be less than or equal to 10000",
        "rules/r.yaml:13:15: duration must be at most 36500d (100 years), got '9999999999999999999s'",
    ]


def test_every_integer_too_large_for_64_bits_in_a_file_is_reported(project: Path) -> None:
    assert problems(
        """
        scoring:
          rules:
            - {id: a, when: {event: X}, points: 99999999999999999999}
        lifecycle: {mql_threshold: 1180591620717411303424}
        """
    ) == [
        "rules/r.yaml:3:41: integer does not fit in 64 bits",
        "rules/r.yaml:4:28: integer does not fit in 64 bits",
    ]


def test_a_rule_file_that_cannot_be_read_is_a_problem_at_the_file(project: Path) -> None:
    Path("rules/r.yaml").write_bytes(b"scoring:\n  rules: [\xff\xfe]\n")
    found = [str(p) for p in check(Path("rules"), Path("config"))]
    assert len(found) == 1 and found[0].startswith("rules/r.yaml:1:1: cannot read: ")
