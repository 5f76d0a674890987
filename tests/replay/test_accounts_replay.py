"""Accounts in replay, explain and report, through the real command line: account records on
one and several workers are the same bytes (an account's prospects share a partition), the
summary counts accounts and account MQLs, `explain` shows the account (score, fit, members,
MQLs), `report` lists the accounts."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from leadrules.engine.replay.partition import plan
from leadrules.engine.replay.sources import EventFile
from tests.scenario import CHANNELS, at

RULES = """
scoring:
  rules:
    - {id: visit, when: {page: {}}, points: 5, expires_after: 20d}
    - {id: pricing, when: {page: {path: /pricing}}, points: 15, expires_after: 10d}
    - {id: demo, when: {event: Demo Requested}, points: 40}
lifecycle:
  mql_threshold: 60
  on_mql:
    - notify: {channel: sales, template: note}
accounts:
  top: 3
  fit:
    - id: enterprise
      when: {trait: {employees: {at_least: 1000}}}
      points: 25
  mql_threshold: 120
  on_mql:
    - notify: {channel: sales, template: note}
triggers:
  - id: buying-committee
    scope: account
    when: {page: {path: /pricing}, times: 3, within: 7d, distinct: prospects}
    cooldown: 14d
    then:
      - notify: {channel: sales, template: note}
  - id: account-demo
    scope: account
    when: {event: Demo Requested}
    then:
      - notify: {channel: log, template: note}
"""


def project(root: Path) -> tuple[Path, Path]:
    rules, config = root / "rules", root / "config"
    (rules / "templates").mkdir(parents=True)
    config.mkdir()
    (rules / "rules.yaml").write_text(RULES)
    (rules / "templates" / "note.md").write_text(
        "{{ prospect }} {{ account.id if account else '' }}\n"
    )
    (config / "channels.yaml").write_text(CHANNELS)
    return rules, config


def stream(seed: int, prospects: int = 60, accounts: int = 7, events: int = 1500) -> list[Any]:
    """Prospects in accounts (some anonymous first, linked later by identify), pricing
    visits, demos, moves between accounts; many events share an instant."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for n in range(prospects):
        out.append(
            {
                "type": "group",
                "anonymousId" if n % 5 == 0 else "userId": f"p{n}",
                "groupId": f"acct-{n % accounts}",
                "traits": {"employees": 5000 if n % accounts < 3 else 50},
                "timestamp": at(0, minutes=n % 7),
                "messageId": f"g{n}",
            }
        )
    for i in range(events):
        n = rng.randrange(prospects)
        when = at(rng.randrange(60), hours=rng.choice([0, 0, 3, 5]))
        roll = rng.random()
        msg: dict[str, Any] = {"timestamp": when, "messageId": f"e{i}"}
        msg["anonymousId" if n % 5 == 0 else "userId"] = f"p{n}"
        if roll < 0.5:
            msg.update(type="page", properties={"path": rng.choice(["/pricing", "/", "/blog"])})
        elif roll < 0.6:
            msg.update(type="track", event="Demo Requested")
        elif roll < 0.63:
            msg.update(type="group", groupId=f"acct-{rng.randrange(accounts)}", traits={})
        elif roll < 0.66 and n % 5 == 0:
            msg = {
                "type": "identify",
                "userId": f"known{n}",
                "anonymousId": f"p{n}",
                "timestamp": when,
                "messageId": f"e{i}",
                "traits": {"title": "VP"},
            }
        else:
            msg.update(type="track", event="Newsletter Opened")
        out.append(msg)
    rng.shuffle(out)
    return out


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "leadrules.engine.cli", *args],
        capture_output=True,
        check=False,
        cwd=cwd,
        timeout=300,
    )


def write(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def test_accounts_in_replay_give_the_same_bytes_on_one_and_several_workers(
    tmp_path: Path,
) -> None:
    project(tmp_path)
    log = write(tmp_path / "events.jsonl", stream(seed=7))
    runs = {n: cli("replay", str(log), "--workers", str(n), cwd=tmp_path) for n in (1, 2, 3)}
    assert all(done.returncode == 0 for done in runs.values()), runs[2].stderr
    one = runs[1].stdout
    records = [json.loads(line) for line in one.splitlines()]
    rules = {r["rule"] for r in records if "account" in r}
    assert rules == {"accounts.mql", "buying-committee", "account-demo"}, rules
    assert runs[2].stdout == one
    assert runs[3].stdout == one

    def summary(done: subprocess.CompletedProcess[bytes]) -> list[bytes]:
        return [x for x in done.stderr.splitlines() if not x.startswith(b"speed:")]

    assert summary(runs[2]) == summary(runs[1]) == summary(runs[3])
    mqls = sum(1 for r in records if r["rule"] == "accounts.mql")
    assert f"accounts: 7; account MQLs: {mqls}".encode() in runs[1].stderr


def test_an_accounts_prospects_share_a_partition(tmp_path: Path) -> None:
    events = stream(seed=3, events=200)
    log = write(tmp_path / "events.jsonl", events)
    (owners,) = plan([EventFile(str(log))], 4)
    by_account: dict[str, set[int]] = {}
    for event, owner in zip(events, owners, strict=True):
        if event["type"] == "group":
            by_account.setdefault(event["groupId"], set()).add(owner)
    assert len(by_account) == 7
    assert all(len(workers) == 1 for workers in by_account.values()), by_account


def test_explain_shows_the_account_score_fit_members_and_mqls(tmp_path: Path) -> None:
    project(tmp_path)
    events = [
        {"type": "group", "userId": u, "groupId": "acme", "traits": {"employees": 3000}}
        | {"timestamp": at(0), "messageId": f"g-{u}"}
        for u in ("ann", "bob", "cid", "dan")
    ]
    events += [
        {"type": "track", "userId": u, "event": "Demo Requested", "timestamp": at(1, n)}
        | {"messageId": f"d-{u}"}
        for n, u in enumerate(("ann", "bob"))
    ]
    events += [
        {"type": "page", "userId": "cid", "properties": {"path": "/pricing"}, "timestamp": at(2)}
        | {"messageId": "p-cid"}
    ]
    log = write(tmp_path / "events.jsonl", events)
    done = cli("explain", "bob", str(log), "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    account = report["account_detail"]
    # fit 25 + ann 40 + bob 40 + cid 20 (top 3; dan has 0) = 125 >= 120 at cid's visit
    assert (account["id"], account["score"], account["fit_points"]) == ("acme", 125, 25)
    assert account["stage"] == "mql"
    assert account["mqls"] == [at(2)]
    assert [(m["prospect"], m["score"], m["counts"]) for m in account["members"]] == [
        ("ann", 40, True),
        ("bob", 40, True),
        ("cid", 20, True),
        ("dan", 0, False),
    ]
    assert account["fit"][0]["rule"] == "enterprise"
    text = cli("explain", "bob", str(log), cwd=tmp_path)
    assert text.returncode == 0
    lines = text.stdout.decode().splitlines()
    assert "account acme: score 125 (fit 25), stage mql" in lines
    assert f"  account MQL at {at(2)}" in lines
    assert "  member dan: 0 (not in the top)" in lines


def test_report_lists_the_accounts_with_score_members_and_mqls(tmp_path: Path) -> None:
    project(tmp_path)
    log = write(tmp_path / "events.jsonl", stream(seed=5, events=600))
    done = cli("report", str(log), "--json", "-", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    accounts = figures["accounts"]
    assert sorted(a["account"] for a in accounts) == [f"acct-{n}" for n in range(7)]
    assert [a["score"] for a in accounts] == sorted((a["score"] for a in accounts), reverse=True)
    assert sum(a["members"] for a in accounts) <= 60
    replay = cli("replay", str(log), cwd=tmp_path)
    mqls = sum(1 for line in replay.stdout.splitlines() if b'"accounts.mql"' in line)
    assert sum(a["mqls"] for a in accounts) == mqls > 0
    for account in accounts:
        fit = 25 if account["account"] in ("acct-0", "acct-1", "acct-2") else 0
        assert account["fit_points"] == fit
    html = tmp_path / "report.html"
    shown = cli("report", str(log), "--html", str(html), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "Accounts (7)" in html.read_text()
    assert b"account MQLs" in shown.stdout


def test_rules_without_accounts_keep_the_report_and_explain_of_prospects(tmp_path: Path) -> None:
    rules, _ = project(tmp_path)
    text = RULES[: RULES.index("accounts:")]
    (rules / "rules.yaml").write_text(textwrap.dedent(text))
    events = [
        {"type": "group", "userId": "ann", "groupId": "acme", "timestamp": at(0)}
        | {"messageId": "g1", "traits": {"name": "Acme"}},
        {"type": "track", "userId": "ann", "event": "Demo Requested", "timestamp": at(1)}
        | {"messageId": "d1"},
    ]
    log = write(tmp_path / "events.jsonl", events)
    replay = cli("replay", str(log), cwd=tmp_path)
    assert b'"account"' not in replay.stdout
    assert b"account MQLs" not in replay.stderr
    done = cli("explain", "ann", str(log), "--json", cwd=tmp_path)
    account = json.loads(done.stdout)["account_detail"]
    assert (account["id"], account["score"], account["stage"]) == ("acme", 40, None)


def test_a_rule_test_checks_an_accounts_score_and_stage(tmp_path: Path) -> None:
    rules, _ = project(tmp_path)
    (rules / "tests").mkdir()
    story = """
        name: acme
        events:
          - {type: group, userId: ann, groupId: acme, timestamp: "2026-03-02T09:00:00Z", traits: {employees: 5000}}
          - {type: track, userId: ann, event: Demo Requested, timestamp: "2026-03-02T10:00:00Z"}
        expect:
          decisions:
            - {action: notify, account: acme, rule: account-demo, score: 65}
          accounts:
            acme: {score: SCORE, stage: lead}
        """
    test = rules / "tests" / "acme.yaml"
    test.write_text(textwrap.dedent(story).replace("SCORE", "65"))
    assert cli("test", cwd=tmp_path).returncode == 0
    test.write_text(textwrap.dedent(story).replace("SCORE", "66"))
    failed = cli("test", cwd=tmp_path)
    assert failed.returncode == 1
    assert (
        b'rules/tests/acme.yaml:10: account \'acme\': expected {"score":66,"stage":"lead"}, '
        b'got {"score":65,"stage":"lead"}' in failed.stdout
    )
