"""Contract "Events (input)": a malformed message is rejected naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from leadrules.engine.core.events import normalize
from leadrules.engine.errors import EventError
from leadrules.engine.timefmt import parse_timestamp

BASE = {
    "type": "track",
    "event": "E",
    "userId": "u1",
    "timestamp": "2026-03-04T10:00:00Z",
    "messageId": "m1",
}


def with_(**changes: Any) -> dict[str, Any]:
    msg = dict(BASE)
    for key, value in changes.items():
        if value is ...:
            msg.pop(key)
        else:
            msg[key] = value
    return msg


@pytest.mark.parametrize(
    ("message", "field"),
    [
        (with_(type=...), "type"),
        (with_(type="click"), "type"),
        (with_(userId=...), "userId"),
        (with_(event=...), "event"),
        (with_(event=5), "event"),
        (with_(timestamp=...), "timestamp"),
        (with_(timestamp="yesterday"), "timestamp"),
        (with_(messageId=...), "messageId"),
        (with_(properties=[1]), "properties"),
        (with_(userId={"a": 1}), "userId"),
        (
            {"type": "alias", "userId": "u", "timestamp": "2026-03-04T10:00:00Z", "messageId": "m"},
            "previousId",
        ),
        ([1, 2], "message"),
    ],
)
def test_a_malformed_message_is_rejected_naming_the_field(message: Any, field: str) -> None:
    with pytest.raises(EventError) as caught:
        normalize(message)
    assert caught.value.field == field
    assert str(caught.value).startswith(field)


def test_the_prospect_is_user_id_else_anonymous_id() -> None:
    assert normalize(with_(anonymousId="a1")).prospect == "u1"
    assert normalize(with_(userId=..., anonymousId="a1")).prospect == "a1"


def test_timestamps_are_utc() -> None:
    event = normalize(with_(timestamp="2026-03-04T12:00:00+02:00"))
    assert event.ts == parse_timestamp("2026-03-04T10:00:00Z")
    assert normalize(with_(timestamp="2026-03-04T10:00:00")).ts == event.ts  # no offset: UTC


def test_the_daemon_fills_in_missing_message_id_and_timestamp() -> None:
    event = normalize(with_(messageId=..., timestamp=...), default_message_id="new", default_ts=42)
    assert (event.message_id, event.ts) == ("new", 42)


def test_a_timestamp_from_year_9000_on_is_refused_naming_the_field() -> None:
    """Event timestamps (docs/operations.md): the calendar's end minus room for durations.
    `9999-12-31T23:59:59-23:59` is past year 9999 in UTC: it must be refused at the door,
    not accepted and then fail in evaluation."""
    from leadrules.engine.core.events import EventError, normalize

    base = {"type": "track", "userId": "u1", "event": "X", "messageId": "m1"}
    for stamp in ("9999-12-31T23:59:59-23:59", "9000-01-01T00:00:00Z"):
        with pytest.raises(EventError) as caught:
            normalize({**base, "timestamp": stamp})
        assert "timestamp" in str(caught.value) and "8999-12-31T23:59:59Z" in str(caught.value)
    assert normalize({**base, "timestamp": "8999-12-31T23:59:59Z"}).ts == 221_845_391_999_000_000
