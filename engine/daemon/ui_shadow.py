"""What `/ui/shadow` shows: where the shadow rule set stands (its candidate, version, last
load error, how far it has read the log), the counts, and the decisions it would have made
that live did not ("would have") and those live made that it would not ("live only").

The difference is taken over every recorded decision of both sides (`core.shadow_diff`); the
page lists the first `limit` of each list."""

from __future__ import annotations

from typing import Any

from leadrules.engine.core.shadow_diff import compare
from leadrules.engine.daemon import shadow_store
from leadrules.engine.daemon.shadow_loop import ShadowLoop
from leadrules.engine.daemon.store import Store
from leadrules.engine.timefmt import format_iso


def _row(record: dict[str, Any]) -> dict[str, Any]:
    if record.get("action") == "set_stage":
        detail = f"to {record.get('stage')}"
    else:
        detail = str(record.get("template") or record.get("sequence") or "")
    return {
        "at": record.get("at", ""),
        "prospect": record.get("prospect", ""),
        "action": record.get("action", ""),
        "rule": record.get("rule", ""),
        "detail": detail,
        "channel": record.get("channel") or "",
    }


def view(store: Store, loop: ShadowLoop | None, limit: int = 100) -> dict[str, Any]:
    """The page's data. `loop` is None when the daemon runs without `shadow:`."""
    where = shadow_store.position(store)
    out: dict[str, Any] = {
        "configured": loop is not None,
        "directory": None if loop is None else str(loop.rules_dir),
        "version": None if loop is None else loop.rules_version,
        "error": None if loop is None else loop.last_error,
        "recorded": where is not None,
    }
    if where is None:
        return out
    diff = compare(shadow_store.live_records(store), shadow_store.shadow_records(store))
    out.update(
        {
            "events_behind": where.events_behind,
            "fired_through": None
            if where.fired_through is None
            else format_iso(where.fired_through),
            "errors": where.errors,
            "counts": {
                "shadow": diff.shadow,
                "live": diff.live,
                "would_have": len(diff.would_have),
                "live_only": len(diff.live_only),
            },
            "would_have": [_row(r) for r in diff.would_have[:limit]],
            "live_only": [_row(r) for r in diff.live_only[:limit]],
        }
    )
    return out
