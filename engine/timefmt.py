"""Parsing and formatting of the contract's durations and timestamps."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache

US_PER_S = 1_000_000
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
DURATION_RE = re.compile(r"^([0-9]+)([smhdw])$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_duration(text: object) -> int:
    """`90s`, `15m`, `4h`, `30d`, `2w` -> microseconds. Raises ValueError on any other form."""
    if not isinstance(text, str):
        raise ValueError(
            f"duration must be an integer and a unit (s, m, h, d, w) such as '30d', got {text!r}"
        )
    found = DURATION_RE.match(text)
    if not found:
        raise ValueError(
            f"duration must be an integer and a unit (s, m, h, d, w) such as '30d', got {text!r}"
        )
    value = int(found.group(1))
    if value <= 0:
        raise ValueError(f"duration must be positive, got {text!r}")
    return value * _UNITS[found.group(2)] * US_PER_S


def format_duration(us: int) -> str:
    """Microseconds -> the largest exact unit (`172800000000` -> `2d`)."""
    seconds = us // US_PER_S
    for unit in ("w", "d", "h", "m"):
        if seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


def parse_timestamp(text: str) -> int:
    """ISO 8601 -> microseconds since the epoch. A time without an offset is taken as UTC."""
    value = datetime.fromisoformat(text.strip())
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - _EPOCH
    return (delta.days * 86400 + delta.seconds) * US_PER_S + delta.microseconds


@lru_cache(maxsize=4096)
def _format_second(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_at(us: int) -> str:
    """Microseconds -> `2026-03-04T10:00:00Z` (UTC, second precision, truncated)."""
    return _format_second(us // US_PER_S)


def format_iso(us: int) -> str:
    """Microseconds -> ISO 8601 with the full precision that is there (`...T10:00:00.250Z`)."""
    value = datetime.fromtimestamp(us // US_PER_S, UTC).replace(microsecond=us % US_PER_S)
    text = value.isoformat().replace("+00:00", "Z")
    return text
