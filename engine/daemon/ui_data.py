"""What the dashboard shows, read from the daemon's database: the funnel, open MQLs with
their SLA clock, recent decisions, and one prospect's explanation (score with its reasons,
stage history, timeline of events and decisions, sequences, pending timers). Read only."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import func
from sqlmodel import Session, col, select

from leadrules.engine.core.ruleset import RuleSet
from leadrules.engine.core.send_windows import sla_due
from leadrules.engine.daemon.codec import decode
from leadrules.engine.daemon.store import AliasRow, DecisionRow, EventRow, ProspectRow, TimerRow
from leadrules.engine.timefmt import format_iso

STAGES = ("lead", "mql", "sal", "sql", "customer", "recycled")
US_PER_MINUTE = 60_000_000


def funnel(session: Session) -> dict[str, int]:
    rows = session.exec(select(ProspectRow.stage, func.count()).group_by(ProspectRow.stage))
    counts = dict(rows.all())
    return {stage: int(counts.get(stage, 0)) for stage in STAGES}


def open_mqls(session: Session, rules: RuleSet, now: int, limit: int = 50) -> list[dict[str, Any]]:
    """MQLs waiting for sales, the most urgent first: minutes left (negative: breached)."""
    within = rules.lifecycle.sla_accept_within_us
    out = []
    for row in session.exec(select(ProspectRow).where(ProspectRow.stage == "mql")).all():
        state = decode(orjson.loads(row.state))
        since = state.history[-1].at if state.history else row.updated_at
        hours = rules.lifecycle.sla_business_hours
        deadline = None if within is None else sla_due(since, within, hours)
        out.append(
            {
                "prospect": row.id,
                "name": state.traits.get("name") or "",
                "score": state.fit_points + state.behaviour_points,
                "mql_at": format_iso(since),
                "deadline": None if deadline is None else format_iso(deadline),
                "minutes_left": None if deadline is None else (deadline - now) // US_PER_MINUTE,
            }
        )
    out.sort(key=lambda r: (r["minutes_left"] is None, r["minutes_left"] or 0))
    return out[:limit]


def recent_decisions(
    session: Session, limit: int = 30, prospect: str | None = None
) -> list[dict[str, Any]]:
    query = select(DecisionRow).order_by(col(DecisionRow.seq).desc()).limit(limit)
    if prospect is not None:
        query = query.where(DecisionRow.prospect == prospect)
    return [
        {
            "at": format_iso(row.at),
            "prospect": row.prospect,
            "action": row.action,
            "rule": row.rule,
            "channel": row.channel or "",
            "status": row.status,
            "detail": _detail(orjson.loads(row.record)),
        }
        for row in session.exec(query).all()
    ]


def _detail(record: dict[str, Any]) -> str:
    if record.get("action") == "set_stage":
        return f"to {record.get('stage')}"
    return str(record.get("template") or record.get("sequence") or "")


def resolve(session: Session, prospect: str) -> str:
    row = session.get(AliasRow, prospect)
    return prospect if row is None else row.canonical


def explain(session: Session, rules: RuleSet, prospect: str, now: int) -> dict[str, Any] | None:
    canonical = resolve(session, prospect)
    row = session.get(ProspectRow, canonical)
    if row is None:
        return None
    state = decode(orjson.loads(row.state))
    reasons: list[dict[str, Any]] = [
        {"rule": f.rule, "points": f.points, "kind": "fit", "at": format_iso(f.since), "what": ""}
        for f in state.fit.values()
    ]
    reasons += [
        {
            "rule": e.rule,
            "points": e.points,
            "kind": "behaviour",
            "at": format_iso(e.at),
            "what": _what(e.event),
            "expires": None if e.expires is None else format_iso(e.expires),
        }
        for e in state.ledger
        if e.state == "active" and (e.expires is None or e.expires > now)
    ]
    reasons.sort(key=lambda r: (-abs(r["points"]), r["at"]))
    ids = [canonical, *state.aliases]
    events = session.exec(
        select(EventRow)
        .where(col(EventRow.prospect).in_(ids))
        .order_by(col(EventRow.ts).desc())
        .limit(50)
    ).all()
    timeline = [
        {"at": format_iso(e.ts), "kind": "event", "what": _raw_what(orjson.loads(e.raw))}
        for e in events
    ]
    timeline += [
        {
            "at": d["at"],
            "kind": d["action"],
            "what": f"{d['rule']} {d['detail']} {d['channel']}".strip(),
        }
        for d in recent_decisions(session, 50, canonical)
    ]
    timeline.sort(key=lambda t: t["at"], reverse=True)
    timers = session.exec(
        select(TimerRow).where(col(TimerRow.prospect).in_(ids)).order_by(col(TimerRow.due_at))
    ).all()
    return {
        "prospect": canonical,
        "aliases": state.aliases,
        "traits": state.traits,
        "stage": state.stage,
        "score": sum(r["points"] for r in reasons),
        "threshold": rules.lifecycle.mql_threshold,
        "reasons": reasons,
        "history": [
            {"at": format_iso(h.at), "stage": h.stage, "reason": h.reason or ""}
            for h in state.history
        ],
        "sequences": [
            {"sequence": e.sequence, "started": format_iso(e.started), "next_step": e.next_step + 1}
            for e in state.enrolments.values()
        ],
        "timers": [
            {"due": format_iso(t.due_at), "key": t.key.split(":")[0], "what": t.key} for t in timers
        ],
        "timeline": timeline[:80],
    }


def _what(event: dict[str, Any]) -> str:
    name = event.get("event") or event.get("path") or event.get("type") or ""
    title = event.get("title")
    return f"{name}: {title}" if title and title != name else str(name)


def _raw_what(raw: dict[str, Any]) -> str:
    kind = raw.get("type", "")
    props = raw.get("properties") or {}
    if kind == "track":
        title = props.get("title")
        return f"{raw.get('event')}" + (f": {title}" if title else "")
    if kind == "page":
        return f"page {props.get('path') or raw.get('name') or ''}"
    return str(kind)
