"""Segment messages at the door: validation and normalisation.

This is the hot path of a replay, so validation is written out by hand rather than through a
pydantic model: every rejection raises `EventError` naming the field, and a valid message
becomes an `Event` with its prospect id and a UTC timestamp in microseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from leadrules.engine.errors import EventError
from leadrules.engine.timefmt import parse_timestamp

EVENT_TYPES = frozenset({"track", "page", "identify", "group", "alias", "screen"})
MAX_ID_LENGTH = 256
# The timestamp policy (docs/operations.md, "Event timestamps"): nothing before the Unix
# epoch, and at the daemon nothing more than 7 days ahead of its receipt (a clock that far
# off is wrong, and an event from the future would hold windows and timers open). A replay
# has no receipt: its files are histories, and the daemon's export holds only what passed.
MAX_AHEAD_US = 7 * 86_400 * 1_000_000
# And nothing from year 9000 on, in a replay too: a rule's durations (up to 100 years each)
# added to a time near the calendar's end (9999-12-31) would make timers and `at` strings
# that cannot be written.
LATEST_US = 221_845_392_000_000_000  # 9000-01-01T00:00:00Z

_EMPTY: dict[str, Any] = {}


@dataclass(slots=True)
class Event:
    type: str
    prospect: str  # userId, else anonymousId (for alias: userId)
    ts: int  # microseconds since the epoch, UTC
    message_id: str
    user_id: str | None = None
    anonymous_id: str | None = None
    previous_id: str | None = None
    event: str | None = None  # track: the event name
    name: str | None = None  # page: the page name
    properties: dict[str, Any] = field(default_factory=dict)
    traits: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)


def _id(raw: dict[str, Any], key: str) -> str | None:
    value = raw.get(key)
    if value is None or value == "":
        return None
    if type(value) is str:
        if len(value) > MAX_ID_LENGTH:
            raise EventError(key, f"is longer than {MAX_ID_LENGTH} characters")
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise EventError(key, f"must be a string, got {type(value).__name__}")
    return str(value)


def _mapping(raw: dict[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key)
    if value is None:
        return _EMPTY
    if type(value) is not dict:
        raise EventError(key, f"must be an object, got {type(value).__name__}")
    return value


def _shown(value: Any) -> str:
    """A value for an error message: strings quoted and cut short, anything else its type
    (a repr of a hostile nested value could be huge, or recurse past the limit)."""
    if type(value) is str:
        return repr(value[:40] + ("..." if len(value) > 40 else ""))
    return type(value).__name__


def _timestamp(raw: dict[str, Any], default_ts: int | None, received_at: int | None) -> int:
    stamp = raw.get("timestamp")
    if stamp is None or stamp == "":
        stamp = raw.get("originalTimestamp")
    if stamp is None or stamp == "":
        if default_ts is None:
            raise EventError("timestamp", "is required")
        return default_ts
    if type(stamp) is not str:
        raise EventError("timestamp", f"must be an ISO 8601 string, got {type(stamp).__name__}")
    try:
        ts = parse_timestamp(stamp)
    except (ValueError, OverflowError):
        raise EventError("timestamp", f"is not an ISO 8601 time: {_shown(stamp)}") from None
    if ts < 0:
        raise EventError("timestamp", f"is before 1970-01-01T00:00:00Z: {_shown(stamp)}")
    if ts >= LATEST_US:
        raise EventError("timestamp", f"is after 8999-12-31T23:59:59Z: {_shown(stamp)}")
    if received_at is not None and ts > received_at + MAX_AHEAD_US:
        raise EventError(
            "timestamp", f"is more than 7 days after the message was received: {_shown(stamp)}"
        )
    return ts


def normalize(
    raw: Any,
    *,
    default_message_id: str | None = None,
    default_ts: int | None = None,
    received_at: int | None = None,
) -> Event:
    """Validate one Segment message and return it as an `Event`.

    `default_message_id` / `default_ts` fill a missing `messageId` / `timestamp` (the daemon
    passes a fresh id and the time of receipt); without them the field is required.
    `received_at` (the daemon's receive time) bounds how far ahead `timestamp` may be.
    """
    if type(raw) is not dict:
        raise EventError("message", f"must be a JSON object, got {type(raw).__name__}")
    kind = raw.get("type")
    if type(kind) is not str or kind not in EVENT_TYPES:
        if kind is None:
            raise EventError("type", "is required")
        raise EventError(
            "type", f"must be one of track, page, identify, group, alias; got {_shown(kind)}"
        )

    user_id = _id(raw, "userId")
    anonymous_id = _id(raw, "anonymousId")
    previous_id = None
    if kind == "alias":
        previous_id = _id(raw, "previousId")
        if previous_id is None:
            raise EventError("previousId", "is required for alias")
        if user_id is None:
            raise EventError("userId", "is required for alias")
    prospect = user_id or anonymous_id
    if prospect is None:
        raise EventError("userId", "one of userId or anonymousId is required")

    event_name = None
    if kind == "track":
        event_name = raw.get("event")
        if type(event_name) is not str or not event_name:
            if event_name is None or event_name == "":
                raise EventError("event", "is required for track")
            raise EventError("event", f"must be a string, got {type(event_name).__name__}")
    page_name = raw.get("name")
    if page_name is not None and type(page_name) is not str:
        raise EventError("name", f"must be a string, got {type(page_name).__name__}")

    properties = _mapping(raw, "properties")
    traits = _EMPTY
    if kind == "identify" or "traits" in raw:
        traits = _mapping(raw, "traits")
        if kind == "identify" and not traits:
            # analytics.js places identify traits under context.traits when called that way.
            context = raw.get("context")
            if type(context) is dict and type(context.get("traits")) is dict:
                traits = context["traits"]

    ts = _timestamp(raw, default_ts, received_at)

    message_id = raw.get("messageId")
    if type(message_id) is not str or not message_id:
        if message_id is None or message_id == "":
            if default_message_id is None:
                raise EventError("messageId", "is required")
            message_id = default_message_id
        elif isinstance(message_id, bool) or not isinstance(message_id, int):
            raise EventError("messageId", f"must be a string, got {type(message_id).__name__}")
        else:
            message_id = str(message_id)

    return Event(
        kind,
        prospect,
        ts,
        message_id,
        user_id,
        anonymous_id,
        previous_id,
        event_name,
        page_name,
        properties,
        traits,
        raw,
    )
