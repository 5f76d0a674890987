"""Contract "Scoring" (every point has a reason: which rule gave which points for which event)
and "Templates" (`reasons` with the event, `recent`): the event as sales reads it keeps its
type, name or page name, and the useful properties that are text or numbers; nested values
are left out without hiding the properties after them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.core.contract_support import PING, Replayed
from tests.scenario import at, page, track

RULES = (
    """
    scoring:
      rules:
        - {id: visit, when: {page: {}}, points: 10}
        - {id: video, when: {event: Video Watched}, points: 5}
    """
    + PING
)


def test_scoring_a_reason_keeps_text_and_numbers_and_leaves_out_nested_values(
    tmp_path: Path,
) -> None:
    video = track(
        "u1",
        at(0),
        "Video Watched",
        title={"text": "Case study"},  # nested: left out
        path="/videos/acme",
        url=["https://a.example", "https://b.example"],  # a list: left out
        category=7,
        name=1.5,
    )
    events = [video, track("u1", at(0, 1), "Ping")]
    replayed = Replayed(tmp_path, RULES, events)
    (reason,) = [c["event"] for c in replayed.explain("u1", at(1))["contributions"]]
    assert reason == {
        "type": "track",
        "messageId": video["messageId"],
        "event": "Video Watched",
        "path": "/videos/acme",
        "category": 7,
        "name": 1.5,
        "at": at(0),
    }


def test_scoring_only_a_page_has_a_page_name_in_its_description(tmp_path: Path) -> None:
    unnamed = page("u1", at(0), "/pricing")  # a page without `name`
    named = page("u1", at(0, 1), "/docs", name="Docs", properties={"name": "not this"})
    video = track("u1", at(0, 2), "Video Watched", category="demo")
    video["name"] = "not a page"  # a track message's top-level `name` is no page name
    events = [unnamed, named, video, track("u1", at(0, 3), "Ping")]
    replayed = Replayed(tmp_path, RULES, events)
    (context,) = replayed.contexts
    recent: list[dict[str, Any]] = context["recent"]
    assert recent[1:] == [
        {
            "type": "track",
            "messageId": video["messageId"],
            "event": "Video Watched",
            "category": "demo",
            "at": at(0, 2),
        },
        {
            "type": "page",
            "messageId": named["messageId"],
            "name": "Docs",
            "path": "/docs",
            "url": "https://www.example.com/docs",
            "at": at(0, 1),
        },
        {
            "type": "page",
            "messageId": unnamed["messageId"],
            "path": "/pricing",
            "url": "https://www.example.com/pricing",
            "at": at(0),
        },
    ]
    # The reasons carry the same descriptions (equal points: oldest first).
    visits = [r["event"] for r in context["reasons"] if r["rule"] == "visit"]
    assert visits == [recent[3], recent[2]]
