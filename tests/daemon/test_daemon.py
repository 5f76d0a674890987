"""`leadrules run` as users run it: Segment's and RudderStack's own clients, replay equals
live, a SIGKILL in the middle of a load, hot reload. Everything over 127.0.0.1."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.daemon.harness import KEY, ROOT, Daemon
from tests.receivers import HttpReceiver

pytestmark = pytest.mark.integration


@pytest.fixture
def daemon(tmp_path: Path, http: HttpReceiver, database_url: str) -> Iterator[Daemon]:
    d = Daemon(tmp_path, database_url, http.url)
    d.prepare()
    d.start()
    yield d
    d.stop()


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def keys(http: HttpReceiver) -> list[str]:
    return [r.headers["idempotency-key"] for r in http.requests]


def test_segment_and_rudderstack_clients_work_unchanged(daemon: Daemon, http: HttpReceiver) -> None:
    from rudderstack.analytics import Client as RudderClient
    from segment.analytics import Client as SegmentClient

    segment = SegmentClient(KEY, host=daemon.url, sync_mode=True, max_retries=1)
    segment.identify(
        "u-seg",
        {"name": "Sam", "title": "VP Sales", "company": {"size": 900}, "industry": "software"},
    )
    segment.track("u-seg", "Demo Requested")
    rudder = RudderClient(KEY, host=daemon.url, sync_mode=True, gzip=True, max_retries=1)
    rudder.page("u-rud", name="Pricing", properties={"path": "/pricing"})
    rudder.track("u-rud", "Demo Requested")
    daemon.settle()
    bodies = [json.loads(r.body) for r in http.requests]
    demo = [b for b in bodies if b["record"]["rule"] == "demo-request"]
    assert sorted(b["record"]["prospect"] for b in demo) == ["u-rud", "u-seg"]
    mql = [b for b in bodies if b["record"]["rule"] == "lifecycle.mql" and b["channel"] == "sales"]
    assert [b["record"]["prospect"] for b in mql] == ["u-seg"]
    assert "demo-requested" in mql[0]["text"] and "Sam" in mql[0]["subject"]


def test_write_keys_limits_and_per_message_errors(daemon: Daemon) -> None:
    assert httpx.post(f"{daemon.url}/v1/track", json={}, auth=("wrong", "")).status_code == 401
    assert httpx.post(f"{daemon.url}/v1/track", json={}).status_code == 401
    bad = daemon.post(
        "/v1/batch",
        {
            "batch": [
                {"type": "track", "userId": "u1", "event": "Ping"},
                {"type": "track", "userId": "u1"},
                {"type": "page", "userId": "u1", "properties": {"blob": "x" * 40_000}},
            ]
        },
    )
    assert bad.status_code == 400
    assert [(e["index"], e["field"]) for e in bad.json()["errors"]] == [
        (1, "event"),
        (2, "message"),
    ]
    assert daemon.settle()["pending_events"] == 0
    export = daemon.cli("export", "--out", "log.jsonl")
    assert export.returncode == 0, export.stderr
    assert [
        json.loads(x)["event"] for x in (daemon.root / "log.jsonl").read_text().splitlines()
    ] == ["Ping"]
    huge = daemon.post(
        "/v1/batch", {"batch": [{"type": "track", "userId": "u", "event": "x" * 1000}] * 600}
    )
    assert huge.status_code == 413
    metrics = httpx.get(f"{daemon.url}/metrics").text
    assert "leadrules_events_accepted_total 1.0" in metrics
    assert 'leadrules_events_rejected_total{field="event"} 1.0' in metrics


def test_replay_of_the_exported_log_equals_live(daemon: Daemon, http: HttpReceiver) -> None:
    history = [json.loads(x) for x in (ROOT / "examples" / "events.jsonl").read_text().splitlines()]
    assert daemon.post("/v1/batch", {"batch": history}).status_code == 200
    daemon.settle()
    soon = datetime.now(UTC) + timedelta(days=1)
    fresh = []
    for i in range(30):
        who = f"u-live-{i % 6}"
        fresh.append(
            {
                "type": "page",
                "userId": who,
                "properties": {"path": "/pricing"},
                "timestamp": iso(soon + timedelta(minutes=i)),
                "messageId": f"live-{i}",
            }
        )
    fresh.append(
        {
            "type": "track",
            "userId": "u-live-1",
            "event": "Demo Requested",
            "timestamp": iso(soon + timedelta(hours=1)),
            "messageId": "live-demo",
        }
    )
    for start in range(0, len(fresh), 10):
        assert daemon.post("/v1/batch", {"batch": fresh[start : start + 10]}).status_code == 200
    daemon.settle()
    live = [json.loads(r.body)["record"] for r in http.requests]
    assert daemon.cli("export", "--out", "log.jsonl").returncode == 0
    # The replay ends at the last event (tomorrow): every timer due by then fired live too,
    # and the next ones (two days out) fire in neither.
    replayed = daemon.cli("replay", "log.jsonl", "--out", "replayed.jsonl")
    assert replayed.returncode == 0, replayed.stderr
    records = [json.loads(x) for x in (daemon.root / "replayed.jsonl").read_text().splitlines()]
    delivered = [r for r in records if r["action"] in ("notify", "send")]
    assert sorted(json.dumps(r, sort_keys=True) for r in live) == sorted(
        json.dumps(r, sort_keys=True) for r in delivered
    )
    assert len(delivered) > 20


def test_sigkill_mid_load_loses_no_accepted_event_and_sends_nothing_twice(
    tmp_path: Path, http: HttpReceiver, database_url: str
) -> None:
    d = Daemon(tmp_path, database_url, http.url)
    d.prepare()
    d.start()
    acked: set[str] = set()
    now = datetime.now(UTC)
    batches = [
        [
            {
                "type": "track",
                "userId": f"u-{b}-{i}",
                "event": "Demo Requested",
                "messageId": f"m-{b}-{i}",
                "timestamp": iso(now),
            }
            for i in range(10)
        ]
        for b in range(40)
    ]
    try:
        for number, batch in enumerate(batches):
            if number == 20:
                d.kill()  # in the middle of the load: evaluation and delivery are in flight
                d.start()
            try:
                response = d.post("/v1/batch", {"batch": batch})
            except httpx.HTTPError:
                continue
            if response.status_code == 200:
                acked.update(m["messageId"] for m in batch)
        d.settle(timeout=60)
        assert d.cli("export", "--out", "log.jsonl").returncode == 0
        stored = {
            json.loads(x)["messageId"] for x in (tmp_path / "log.jsonl").read_text().splitlines()
        }
        assert acked <= stored and len(acked) >= 390
        received = keys(http)
        expected = {f"m-{b}-{i}/0" for b in range(40) for i in range(10) if f"m-{b}-{i}" in stored}
        assert set(received) == expected  # every decision delivered, each under its one key
    finally:
        d.stop()


def test_hot_reload_applies_good_edits_and_keeps_the_last_good_rules(
    daemon: Daemon, http: HttpReceiver
) -> None:
    first = daemon.health()["rules_version"]
    triggers = daemon.root / "rules" / "triggers.yaml"
    good = triggers.read_text()
    triggers.write_text(good.replace("    cooldown: 1d\n", "    cooldwn: 1d\n", 1))
    deadline = time.monotonic() + 20
    while daemon.health()["last_reload_error"] is None and time.monotonic() < deadline:
        time.sleep(0.2)
    status = daemon.health()
    assert "unknown key 'cooldwn' (did you mean 'cooldown'?)" in status["last_reload_error"]
    assert status["last_reload_error"].startswith("rules/triggers.yaml:")
    assert status["rules_version"] == first
    assert daemon.post("/v1/track", {"userId": "u9", "event": "Demo Requested"}).status_code == 200
    daemon.settle()
    assert any(json.loads(r.body)["record"]["rule"] == "demo-request" for r in http.requests)
    triggers.write_text(good.replace("id: demo-request", "id: demo-request-now"))
    while daemon.health()["rules_version"] == first and time.monotonic() < deadline + 20:
        time.sleep(0.2)
    assert daemon.health()["last_reload_error"] is None
    assert daemon.post("/v1/track", {"userId": "u10", "event": "Demo Requested"}).status_code == 200
    daemon.settle()
    assert any(json.loads(r.body)["record"]["rule"] == "demo-request-now" for r in http.requests)


def test_sigterm_stops_gracefully_and_the_work_is_kept(daemon: Daemon, http: HttpReceiver) -> None:
    assert daemon.post("/v1/track", {"userId": "u1", "event": "Demo Requested"}).status_code == 200
    assert daemon.stop() == 0
    daemon.start()  # whatever was not finished before the stop is finished now
    daemon.settle()
    assert [json.loads(r.body)["record"]["rule"] for r in http.requests] == ["demo-request"]


def test_explain_reads_the_daemons_database(daemon: Daemon) -> None:
    assert (
        daemon.post(
            "/v1/batch",
            {
                "batch": [
                    {
                        "type": "identify",
                        "userId": "u-x",
                        "anonymousId": "anon-x",
                        "traits": {"title": "VP Sales"},
                    },
                    {"type": "track", "userId": "u-x", "event": "Demo Requested"},
                ]
            },
        ).status_code
        == 200
    )
    daemon.settle()
    done = daemon.cli("explain", "anon-x", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["prospect"] == "u-x"
    assert sorted(c["rule"] for c in report["contributions"]) == ["demo-requested", "senior-title"]
    assert report["score"] == 60
