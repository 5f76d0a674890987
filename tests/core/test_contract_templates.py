"""Contract "Templates" and "Decisions (output)": the variables a notify or send is rendered
with, and the fields each decision record carries only when they apply."""

from __future__ import annotations

from pathlib import Path

from tests.core.contract_support import Replayed
from tests.scenario import at, identify, page, track

RULES = """
    scoring:
      rules:
        - {id: visit, when: {page: {}}, points: 10, expires_after: 7d}
        - {id: senior, when: {trait: {title: VP}}, points: 20}
    triggers:
      - id: demo
        when: {event: Demo}
        then:
          - notify: {channel: sales, template: demo-request}
          - start_sequence: welcome
    sequences:
      welcome:
        steps:
          - send: {channel: email, template: hello}
    """


def test_templates_get_every_variable_the_contract_names(tmp_path: Path) -> None:
    visit = page("u1", at(0), "/pricing", name="Pricing")
    who = identify("u1", at(0, 1), title="VP", email="vp@example.com")
    demo = track("u1", at(0, 2), "Demo", plan="pro")
    replayed = Replayed(tmp_path, RULES, [visit, who, demo])
    notify, send = replayed.contexts
    assert notify["prospect"] == "u1"
    assert notify["traits"] == {"title": "VP", "email": "vp@example.com"}
    assert (notify["score"], notify["stage"], notify["rule"]) == (30, "lead", "demo")
    assert (notify["channel"], notify["template"]) == ("sales", "demo-request")
    assert (notify["sequence"], notify["step"]) == (None, None)
    assert notify["at"] == at(0, 2)
    assert notify["sla_deadline"] is None
    assert notify["reject_reason"] is None
    assert [(r["rule"], r["points"], r["kind"], r["at"]) for r in notify["reasons"]] == [
        ("senior", 20, "fit", at(0, 1)),
        ("visit", 10, "behaviour", at(0)),
    ]
    assert notify["reasons"][1]["expires_at"] == at(7)
    assert notify["reasons"][1]["event"]["at"] == at(0)
    assert "ts" not in notify["reasons"][1]["event"]
    # the latest events, newest first; identify is not activity
    recent = [(r["type"], r.get("event"), r.get("path"), r["at"]) for r in notify["recent"]]
    assert recent == [("track", "Demo", None, at(0, 2)), ("page", None, "/pricing", at(0))]
    assert all("ts" not in r for r in notify["recent"])
    # the event that caused it, as templates see events
    assert notify["event"]["messageId"] == demo["messageId"]
    assert (notify["event"]["event"], notify["event"]["at"]) == ("Demo", at(0, 2))
    assert send["event"] == notify["event"]
    assert (send["rule"], send["sequence"], send["step"]) == ("sequence:welcome", "welcome", 1)
    assert (send["channel"], send["template"]) == ("email", "hello")


def test_templates_keep_the_ten_latest_events(tmp_path: Path) -> None:
    events = [page("u1", at(0, i), f"/p{i}") for i in range(12)]
    events.append(track("u1", at(1), "Demo"))
    notify, _ = Replayed(tmp_path, RULES, events).contexts
    assert [r.get("path") or r.get("event") for r in notify["recent"]] == [
        "Demo",
        *(f"/p{i}" for i in range(11, 2, -1)),
    ]


def test_decisions_carry_channel_template_sequence_and_step_only_when_they_apply(
    tmp_path: Path,
) -> None:
    replayed = Replayed(tmp_path, RULES, [track("u1", at(0, 0, 0, 1.7), "Demo")])
    assert replayed.records == [
        {
            "at": at(0, 0, 0, 1),  # second precision
            "prospect": "u1",
            "action": "notify",
            "rule": "demo",
            "channel": "sales",
            "template": "demo-request",
            "score": 0,
            "stage": "lead",
        },
        {
            "at": at(0, 0, 0, 1),
            "prospect": "u1",
            "action": "start_sequence",
            "rule": "demo",
            "sequence": "welcome",
            "score": 0,
            "stage": "lead",
        },
        {
            "at": at(0, 0, 0, 1),
            "prospect": "u1",
            "action": "send",
            "rule": "sequence:welcome",
            "channel": "email",
            "template": "hello",
            "sequence": "welcome",
            "step": 1,
            "score": 0,
            "stage": "lead",
        },
    ]
    assert [c["rule"] for c in replayed.contexts] == ["demo", "sequence:welcome"]
