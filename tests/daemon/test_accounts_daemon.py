"""Accounts in the daemon (SQLite and PostgreSQL): the account state (members, fit, account
trigger counts, MQL) is stored in the `account` table and survives a restart; live
evaluation makes exactly the account decisions of a replay."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlmodel import select

from leadrules.engine.clock import SimulatedClock
from leadrules.engine.core.account_state import AccountState, AccountTriggerState
from leadrules.engine.core.state import FitEntry
from leadrules.engine.daemon.account_store import (
    AccountDocumentError,
    AccountRow,
    DbAccounts,
    decode_account,
    encode_account,
)
from leadrules.engine.daemon.privacy import forget
from leadrules.engine.daemon.service import Service
from leadrules.engine.daemon.store import Store
from leadrules.engine.language.loader import load_rules
from leadrules.engine.replay.dry_run import replay
from leadrules.engine.replay.sources import EventFile
from tests.scenario import at, identify, page, track, write_events, write_rules

RULES = """
    scoring:
      rules:
        - {id: visit, when: {page: {}}, points: 10}
        - {id: demo, when: {event: Demo Requested}, points: 40}
    accounts:
      top: 2
      fit:
        - id: enterprise
          when: {trait: {employees: {at_least: 1000}}}
          points: 30
      mql_threshold: 100
      on_mql:
        - notify: {channel: sales, template: account-mql}
    triggers:
      - id: committee
        scope: account
        when: {page: {path: /pricing}, times: 3, within: 7d, distinct: prospects}
        then:
          - notify: {channel: sales, template: committee}
    """


def group(who: str, when: str, group_id: str, **traits: Any) -> dict[str, Any]:
    return {
        "type": "group",
        "userId": who,
        "groupId": group_id,
        "timestamp": when,
        "messageId": f"g-{who}-{when}",
        "traits": traits,
    }


def story() -> list[dict[str, Any]]:
    anonymous = group("anon-9", at(0), "acme", employees=4000)
    anonymous["anonymousId"] = anonymous.pop("userId")
    return [
        anonymous,
        group("bob", at(0, 1), "acme"),
        group("cid", at(0, 2), "acme"),
        page("anon-9", at(1), "/pricing", anonymous=True),
        page("bob", at(2), "/pricing"),
        # --- a restart here: the account's members, fit and unused pricing visits are stored
        identify("ann", at(3), anonymous_id="anon-9", title="VP"),
        page("cid", at(4), "/pricing"),  # the third person within 7d: committee fires
        track("ann", at(5), "Demo Requested"),  # fit 30 + ann 50 + bob 10 = 90
        track("bob", at(6), "Demo Requested"),  # ann 50 + bob 50 + fit 30 = 130: account MQL
    ]


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, Path]:
    return write_rules(tmp_path, RULES)


def test_accounts_survive_a_daemon_restart_and_decide_as_a_replay(
    database_url: str, project: tuple[Path, Path], tmp_path: Path
) -> None:
    rules, _ = load_rules(*project, references="warn")
    events = story()
    first, second = events[:5], events[5:]
    store = Store(database_url)
    store.migrate()
    try:
        service = Service(store, rules, SimulatedClock(0))
        assert service.ingest(first).errors == []
        service.process_pending()
        with store.session() as session:
            (row,) = session.exec(select(AccountRow)).all()
        stored = decode_account(orjson.loads(row.state))
        assert (stored.id, stored.members, stored.fit_points) == (
            "acme",
            ["anon-9", "bob", "cid"],
            30,
        )
        assert [p for _, p in stored.triggers["committee"].unused] == ["anon-9", "bob"]
    finally:
        store.dispose()

    store = Store(database_url)  # the daemon starts again on the same database
    try:
        service = Service(store, rules, SimulatedClock(0))
        assert service.ingest(second).errors == []
        service.process_pending()
        live = [r for r in service.decisions() if "account" in r]
        with store.session() as session:
            (row,) = session.exec(select(AccountRow)).all()
        assert (row.id, row.stage) == ("acme", "mql")
        assert decode_account(orjson.loads(row.state)).members == ["ann", "bob", "cid"]
    finally:
        store.dispose()

    out = io.BytesIO()
    replay([EventFile(str(write_events(tmp_path / "log.jsonl", events)))], rules, out)
    replayed = [json.loads(line) for line in out.getvalue().splitlines()]
    assert live == [r for r in replayed if "account" in r]
    assert [(r["rule"], r["prospect"], r["at"], r["score"]) for r in live] == [
        ("committee", "cid", at(4), 30 + 10 + 10),  # top 2 of three 10s
        ("accounts.mql", "bob", at(6), 30 + 50 + 50),
    ]


def test_the_account_document_round_trips() -> None:
    account = AccountState(
        "acme",
        traits={"name": "Acme", "employees": 4000},
        members=["ann", "bob"],
        fit={"enterprise": FitEntry("enterprise", 30, 5, {})},
        fit_points=30,
        stage="mql",
        mqls=[7, 9],
        triggers={"committee": AccountTriggerState([(1, "ann"), (2, "bob")], 3)},
        last_at=9,
    )
    doc = orjson.loads(orjson.dumps(encode_account(account)))
    assert decode_account(doc) == account
    with pytest.raises(AccountDocumentError, match="version 2"):
        decode_account({**doc, "version": 2})


def test_forget_takes_the_prospect_out_of_its_account(
    database_url: str, project: tuple[Path, Path]
) -> None:
    rules, _ = load_rules(*project, references="warn")
    store = Store(database_url)
    store.migrate()
    try:
        service = Service(store, rules, SimulatedClock(0))
        assert service.ingest(story()[:5]).errors == []
        service.process_pending()
        erased = forget(store, "bob", SimulatedClock(0))
        assert erased.counts["account memberships"] == 1
        with store.session() as session:
            (row,) = session.exec(select(AccountRow)).all()
        assert "bob" not in row.state
        account = decode_account(orjson.loads(row.state))
        assert account.members == ["anon-9", "cid"]
        assert [p for _, p in account.triggers["committee"].unused] == ["anon-9"]
    finally:
        store.dispose()


def test_explain_from_the_daemons_database_shows_the_account(
    database_url: str, project: tuple[Path, Path], tmp_path: Path
) -> None:
    rules, _ = load_rules(*project, references="warn")
    store = Store(database_url)
    store.migrate()
    try:
        service = Service(store, rules, SimulatedClock(0))
        assert service.ingest(story()).errors == []
        service.process_pending()
    finally:
        store.dispose()
    rules_dir, config_dir = project
    command = [sys.executable, "-m", "leadrules.engine.cli", "explain", "bob", "--json"]
    command += ["--database-url", database_url, "--at", at(7)]
    command += ["--rules", str(rules_dir), "--config", str(config_dir)]
    done = subprocess.run(
        command,
        capture_output=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    account = json.loads(done.stdout)["account_detail"]
    assert (account["id"], account["score"], account["stage"]) == ("acme", 130, "mql")
    assert account["mqls"] == [at(6)]
    assert [(m["prospect"], m["score"]) for m in account["members"]] == [
        ("ann", 50),
        ("bob", 50),
        ("cid", 10),
    ]


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)  # SQLite: one writer
def test_two_workers_making_one_account_at_once_keep_both_members(database_url: str) -> None:
    """PostgreSQL, several workers: two transactions make the same new account; the second
    waits for the first and takes its row instead of writing over it."""
    store = Store(database_url)
    store.migrate()
    try:
        first = store.session()
        book = DbAccounts(first)
        book.create("acme").add_member("ann")
        book.flush(1)  # written, not committed yet
        made: list[AccountState] = []

        def second_worker() -> None:
            with store.session() as session:
                other = DbAccounts(session)
                account = other.create("acme")  # waits for the first transaction
                account.add_member("bob")
                made.append(account)
                other.flush(2)
                session.commit()

        thread = threading.Thread(target=second_worker)
        thread.start()
        thread.join(0.5)
        assert thread.is_alive()  # held by the first transaction's row
        first.commit()
        first.close()
        thread.join(10)
        assert made and made[0].members == ["ann", "bob"]
        with store.session() as session:
            (row,) = session.exec(select(AccountRow)).all()
        assert decode_account(orjson.loads(row.state)).members == ["ann", "bob"]
    finally:
        store.dispose()
