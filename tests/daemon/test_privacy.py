"""`leadrules forget` and `leadrules export --prospect`, through the real CLI on SQLite and
PostgreSQL: a prospect's events (its merged anonymous id's too), state, aliases, timers and
messages are erased and nothing of them is left in any table; other prospects are untouched;
the audit trail says who, when and how many rows, not the data."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, text

from leadrules.adapters.memory import MemoryAdapter
from leadrules.engine.clock import SimulatedClock
from leadrules.engine.core.ruleset import Channel
from leadrules.engine.daemon.dispatch import Dispatcher
from leadrules.engine.daemon.privacy import forget
from leadrules.engine.daemon.service import Service
from leadrules.engine.daemon.store import Store
from leadrules.engine.language.loader import load_rules
from leadrules.engine.language.templates import TemplateSet
from leadrules.engine.timefmt import parse_timestamp

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
USER, ANON, OTHER = "user-forget-me", "anon-forget-me", "user-keep-me"
EMAIL, NAME = "forget.me@example.com", "Fiona Forgetme"


def events(user: str, anon: str, email: str, name: str, tag: str) -> list[dict[str, Any]]:
    at = "2026-03-04T10:00:{:02d}Z"
    pages = [
        {"type": "page", "anonymousId": anon, "properties": {"path": "/pricing"},
         "messageId": f"{tag}-p{i}", "timestamp": at.format(i)}
        for i in range(3)
    ]  # fmt: skip
    return [
        *pages,
        {"type": "identify", "userId": user, "anonymousId": anon, "messageId": f"{tag}-i",
         "traits": {"email": email, "name": name, "title": "VP Sales"},
         "timestamp": at.format(10)},
        {"type": "track", "userId": user, "event": "Demo Requested", "messageId": f"{tag}-d",
         "timestamp": at.format(20)},
    ]  # fmt: skip


@pytest.fixture
def store(database_url: str) -> Any:
    store = Store(database_url)
    store.migrate()
    clock = SimulatedClock(parse_timestamp("2026-03-04T10:01:00Z"))
    rules = load_rules(ROOT / "rules", ROOT / "config")[0]
    service = Service(store, rules, clock)
    service.ingest(events(USER, ANON, EMAIL, NAME, "f")[:4])
    service.ingest(events(OTHER, "anon-keep-me", "keep@example.com", "Kim Keep", "k"))
    service.process_pending()
    # Deliver what is due now (some messages sent), then make more (left pending).
    MemoryAdapter.clear()
    from dataclasses import replace

    channels = {n: Channel(n, "memory", {}) for n in rules.channels}
    Dispatcher(
        store, replace(rules, channels=channels), TemplateSet(ROOT / "rules" / "templates"), clock
    ).drain()
    service.ingest(events(USER, ANON, EMAIL, NAME, "f")[4:])
    service.process_pending()
    yield store
    store.dispose()


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "leadrules.engine.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        timeout=120,
    )


def dump(store: Store, skip: tuple[str, ...] = ("alembic_version",)) -> dict[str, list[str]]:
    """Every row of every table, as text."""
    out = {}
    with store.engine.connect() as conn:
        for name in inspect(conn).get_table_names():
            if name not in skip:
                out[name] = [repr(tuple(r)) for r in conn.execute(text(f'SELECT * FROM "{name}"'))]
    return out


def mentions(store: Store, *needles: str) -> dict[str, int]:
    return {
        name: sum(any(n in row for n in needles) for row in rows)
        for name, rows in dump(store).items()
        if any(any(n in row for n in needles) for row in rows)
    }


def test_forget_erases_every_trace_and_records_an_audit(store: Store, database_url: str) -> None:
    before = mentions(store, USER, ANON, EMAIL, NAME)
    assert {"event", "prospect", "alias", "timer", "decision"} <= set(before)
    kept = mentions(store, OTHER, "keep@example.com")
    done = cli(
        "forget", USER, "--database-url", database_url, "--by", "dpo@acme", "--reason", "T-7"
    )
    assert done.returncode == 0, done.stderr
    assert "forgot user-forget-me (2 linked id(s)): 5 events, 1 states" in done.stdout
    assert mentions(store, USER, ANON, EMAIL, NAME) == {}
    assert mentions(store, OTHER, "keep@example.com") == kept
    with store.engine.connect() as conn:
        (row,) = conn.execute(text("SELECT * FROM privacy_audit")).mappings().all()
    assert (row["action"], row["operator"], row["reason"]) == ("forget", "dpo@acme", "T-7")
    assert row["subject_sha256"] == hashlib.sha256(USER.encode()).hexdigest()
    counts = json.loads(row["counts"])
    assert counts["events"] == 5 and counts["states"] == 1 and counts["aliases"] == 1
    assert counts["timers"] >= 1 and counts["pending messages"] >= 1
    assert counts["decision records"] >= 1  # delivered messages' records go too
    assert f"audit #{row['id']}" in done.stdout


def test_forget_by_the_anonymous_id_forgets_the_person(store: Store) -> None:
    erased = forget(store, ANON, SimulatedClock(0), operator="x")
    assert erased.prospect == USER and erased.ids == sorted([ANON, USER])
    assert mentions(store, USER, ANON, EMAIL, NAME) == {}
    again = forget(store, USER, SimulatedClock(1), operator="x")  # idempotent, still audited
    assert sum(again.counts.values()) == 0 and again.audit_id is not None


def test_export_gives_one_prospects_data_as_json_lines(
    store: Store, database_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "fiona.jsonl"
    done = cli("export", "--prospect", ANON, "--database-url", database_url, "--out", str(out))
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    kinds = [line["kind"] for line in lines]
    assert kinds[0] == "prospect" and lines[0]["id"] == USER and lines[0]["ids"] == [ANON, USER]
    (state,) = [line for line in lines if line["kind"] == "state"]
    assert EMAIL in json.dumps(state) and state["id"] == USER
    exported = [line["event"]["messageId"] for line in lines if line["kind"] == "event"]
    assert exported == ["f-p0", "f-p1", "f-p2", "f-i", "f-d"]  # arrival order, both ids
    decisions = [line for line in lines if line["kind"] == "decision"]
    assert {d["status"] for d in decisions} >= {"sent", "pending"}
    assert {d["record"]["prospect"] for d in decisions} == {ANON, USER}
    assert OTHER not in out.read_text() and "keep@example.com" not in out.read_text()
    with store.engine.connect() as conn:
        (row,) = conn.execute(text("SELECT * FROM privacy_audit")).mappings().all()
    assert row["action"] == "export" and json.loads(row["counts"])["events"] == 5
