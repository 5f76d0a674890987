"""Send windows: a message to the prospect due in quiet hours waits for the window.

A channel's window (`send_window` in config/channels.yaml) is a daily span of local hours
and the working days, read in the prospect's time zone (the `timezone` trait, when it names
an IANA zone) else the window's default zone. The decision keeps its time (`at`, contract
"Decisions"); the record also says when it may be delivered (`deliver_at`), which the
dispatcher waits for and a replay shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from leadrules.engine.timefmt import US_PER_S

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class SendWindow:
    start_minute: int  # minutes after local midnight, inclusive
    end_minute: int  # exclusive; end < start spans midnight
    days: frozenset[int]  # 0 = Monday, the day the window opens
    timezone: str = "UTC"


@cache
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError):
        return None


def zone_for(window: SendWindow, traits: dict[str, Any]) -> ZoneInfo:
    """The prospect's `timezone` trait when it names a known zone, else the window's."""
    named = traits.get("timezone")
    zone = _zone(named) if isinstance(named, str) and named else None
    return zone or _zone(window.timezone) or ZoneInfo("UTC")


def _open_at(window: SendWindow, local: datetime) -> bool:
    minute = local.hour * 60 + local.minute
    start, end = window.start_minute, window.end_minute
    if start < end:
        return local.weekday() in window.days and start <= minute < end
    if minute >= start:  # spans midnight: opened today
        return local.weekday() in window.days
    yesterday = (local.weekday() - 1) % 7
    return minute < end and yesterday in window.days


def next_open(window: SendWindow, at_us: int, traits: dict[str, Any]) -> int:
    """`at_us` when the window is open then, else the next moment it opens (microseconds)."""
    zone = zone_for(window, traits)
    moment = datetime.fromtimestamp(at_us / US_PER_S, UTC).astimezone(zone)
    if _open_at(window, moment):
        return at_us
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    for offset in range(8):
        candidate_day = day + timedelta(days=offset)
        if candidate_day.weekday() not in window.days:
            continue
        opening = candidate_day.replace(
            hour=window.start_minute // 60, minute=window.start_minute % 60
        )
        if opening > moment:
            return int(opening.astimezone(UTC).timestamp()) * US_PER_S
    return at_us  # no working day at all: never hold a message forever


EVERY_CHANNEL = "*"  # the key of a prospect's sends through any channel (lifecycle.send_cap)


def under_cap(sends: dict[str, list[int]], key: str, cap: tuple[int, int], at: int) -> bool:
    """Fewer than N sends counted under `key` within the D before `at` (times older than
    that are dropped). Counts nothing."""
    times, per = cap
    kept = [t for t in sends.get(key, []) if t > at - per]
    sends[key] = kept
    return len(kept) < times


def within_cap(
    sends: dict[str, list[int]], channel: str, cap: tuple[int, int] | None, at: int
) -> bool:
    """`send_cap: {times: N, per: D}`: at most N sends through `channel` to one prospect in
    any D (across sequences and triggers). Counts the send when it is allowed."""
    if cap is None:
        return True
    times, per = cap
    kept = [t for t in sends.get(channel, []) if t > at - per]
    if len(kept) >= times:
        sends[channel] = kept
        return False
    kept.append(at)
    sends[channel] = kept
    return True


def sla_due(since_us: int, within_us: int, business_hours: SendWindow | None) -> int:
    """When an SLA started at `since_us` ends: `within_us` later, counted in business hours
    only when the lifecycle has `sla.business_hours` (the timer, templates and /ui agree)."""
    if business_hours is None:
        return since_us + within_us
    return add_business_time(business_hours, since_us, within_us)


def add_business_time(window: SendWindow, start_us: int, duration_us: int) -> int:
    """`start_us` plus `duration_us` counted inside the window only (business hours, in the
    window's zone): a 4h SLA from Friday 16:00 with 09:00-17:00 ends Monday 12:00. The
    window does not cross midnight (the language refuses that for business hours)."""
    zone = zone_for(window, {})
    at, remaining = start_us, duration_us
    for _ in range(100_000):  # a 100-year SLA stays bounded
        at = next_open(window, at, {})
        local = datetime.fromtimestamp(at / US_PER_S, UTC).astimezone(zone)
        closing = local.replace(
            hour=window.end_minute // 60 % 24,
            minute=window.end_minute % 60,
            second=0,
            microsecond=0,
        )
        if window.end_minute >= 24 * 60 or closing <= local:
            closing = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        span_end = int(closing.astimezone(UTC).timestamp()) * US_PER_S
        if remaining <= span_end - at:
            return at + remaining
        remaining -= span_end - at
        at = span_end
    return at
