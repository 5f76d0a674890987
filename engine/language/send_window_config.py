"""`send_window:` on a channel in `config/channels.yaml` (core.send_windows):

```yaml
channels:
  email: {adapter: smtp, ..., send_window: {hours: "09:00-17:00", days: [mon, tue, wed, thu, fri], timezone: Europe/Berlin}}
```
`hours` is required; `days` defaults to Monday to Friday, `timezone` (the default when the
prospect has no valid `timezone` trait) to UTC.
"""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo

from leadrules.engine.core.send_windows import DAYS, SendWindow
from leadrules.engine.errors import Problem
from leadrules.engine.language.clauses import did_you_mean
from leadrules.engine.language.rule_files import MAX_TIMES, _duration
from leadrules.engine.language.yaml_source import Source

_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


def send_window(
    src: Source,
    here: tuple[Any, ...],
    value: Any,
    problems: list[Problem],
    *,
    key: str = "send_window",
) -> SendWindow | None:
    """The channel's `send_window`, or None (absent or invalid: each problem positioned)."""
    if value is None:
        return None
    where = (*here, key)
    if not isinstance(value, dict):
        problems.append(src.at(where, f"{key}: a mapping of hours, days, timezone"))
        return None
    before = len(problems)
    for key in value:
        if key not in ("hours", "days", "timezone"):
            hint = did_you_mean(str(key), ["hours", "days", "timezone"])
            problems.append(src.at((*where, key), f"unknown key {key!r}{hint}", key=True))
    hours = value.get("hours")
    found = _HOURS.match(hours) if isinstance(hours, str) else None
    if found is None:
        problems.append(src.at((*where, "hours"), 'hours: "HH:MM-HH:MM", e.g. "09:00-17:00"'))
        start = end = 0
    else:
        h1, m1, h2, m2 = (int(g) for g in found.groups())
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if start == end or end > 24 * 60:
            problems.append(src.at((*where, "hours"), "hours: an empty or impossible span"))
    days = value.get("days", list(DAYS[:5]))
    if not isinstance(days, list) or not days:
        problems.append(src.at((*where, "days"), f"days: a list of {', '.join(DAYS)}"))
        days = []
    for index, day in enumerate(days):
        if day not in DAYS:
            hint = did_you_mean(str(day), DAYS)
            problems.append(src.at((*where, "days", index), f"unknown day {day!r}{hint}"))
    zone = value.get("timezone", "UTC")
    try:
        ZoneInfo(str(zone))
    except (ValueError, KeyError, OSError):
        problems.append(src.at((*where, "timezone"), f"unknown time zone {zone!r}"))
    if len(problems) > before:
        return None
    indices = frozenset(DAYS.index(d) for d in days)
    return SendWindow(start, end % (24 * 60), indices, str(zone))


def send_cap(
    src: Source, here: tuple[Any, ...], value: Any, problems: list[Problem]
) -> tuple[int, int] | None:
    """`send_cap: {times: N, per: D}` -> (N, D in microseconds), or None."""
    if value is None:
        return None
    where = (*here, "send_cap")
    if not isinstance(value, dict) or set(value) != {"times", "per"}:
        problems.append(src.at(where, "send_cap: {times: N, per: D}, e.g. {times: 3, per: 7d}"))
        return None
    times = value["times"]
    if isinstance(times, bool) or not isinstance(times, int) or not 1 <= times <= MAX_TIMES:
        problems.append(src.at((*where, "times"), f"times: a whole number 1 to {MAX_TIMES}"))
        return None
    try:
        per = _duration(value["per"])
    except ValueError as exc:
        problems.append(src.at((*where, "per"), f"per: {exc}"))
        return None
    return times, per


def business_hours(
    src: Source, here: tuple[Any, ...], value: Any, problems: list[Problem]
) -> SendWindow | None:
    """`sla.business_hours` (same keys as a send window; the span may not cross midnight)."""
    if value is None:
        return None
    window = send_window(src, here, value, problems, key="business_hours")
    if window is not None and window.end_minute and window.end_minute < window.start_minute:
        problems.append(src.at((*here, "business_hours", "hours"), "hours: may not cross midnight"))
        return None
    return window
