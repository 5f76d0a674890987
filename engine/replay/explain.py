"""`leadrules explain`: why is this lead hot? The score at a time with every contribution,
the stage history, enrolments and pending timers — built from a replay's final state."""

from __future__ import annotations

from typing import Any

from leadrules.engine.core.accounts import account_scores, account_view, ranked_members
from leadrules.engine.core.ruleset import RuleSet
from leadrules.engine.core.turn import shown
from leadrules.engine.replay.memory_world import MemoryWorld
from leadrules.engine.timefmt import format_iso


def explain_prospect(
    world: MemoryWorld, rules: RuleSet, prospect: str, at: int
) -> dict[str, Any] | None:
    """A JSON-friendly explanation of `prospect` (any of its ids) at time `at`."""
    canonical = world.resolve(prospect)
    state = world.get(canonical)
    if state is None:
        return None
    score = state.score(at)
    contributions: list[dict[str, Any]] = [
        {
            "rule": f.rule,
            "kind": "fit",
            "points": f.points,
            "since": format_iso(f.since),
            "event": shown(f.event),
        }
        for f in state.fit.values()
    ]
    for entry in state.ledger:
        if entry.at > at:
            continue
        contributions.append(
            {
                "rule": entry.rule,
                "kind": "behaviour",
                "points": entry.points,
                "at": format_iso(entry.at),
                "expires_at": None if entry.expires is None else format_iso(entry.expires),
                "status": entry.state,
                "event": shown(entry.event),
            }
        )
    sequences = []
    for name, enrolment in state.enrolments.items():
        steps = rules.sequences[name].steps if name in rules.sequences else ()
        sequences.append(
            {
                "sequence": name,
                "since": format_iso(enrolment.started),
                "next_step": enrolment.next_step + 1 if enrolment.next_step < len(steps) else None,
            }
        )
    timers = []
    for due, _, timer in sorted(world.timers, key=lambda item: item[:2]):
        if world.resolve(timer.prospect) == canonical:
            timers.append({"due": format_iso(due), "kind": timer.kind, "name": timer.name or None})
    return {
        "prospect": canonical,
        "aliases": list(state.aliases),
        "at": format_iso(at),
        "score": score,
        "fit_points": state.fit_points,
        "behaviour_points": state.behaviour_points,
        "stage": state.stage,
        "unsubscribed": state.unsubscribed,
        "reject_reason": state.reject_reason,
        "traits": state.traits,
        "account": state.account,
        "account_traits": state.account_traits,
        "account_detail": explain_account(world, rules, state.account, at),
        "contributions": contributions,
        "history": [
            {"at": format_iso(h.at), "stage": h.stage, "rule": h.rule, "reason": h.reason}
            for h in state.history
        ],
        "enrolments": sequences,
        "timers": timers,
        "recent": [shown(r) for r in reversed(state.recent)],
    }


def explain_account(
    world: MemoryWorld, rules: RuleSet, account: str | None, at: int
) -> dict[str, Any] | None:
    """The account at `at`: its score, fit, stage, MQLs and members (docs/rules.md,
    "Accounts"). Without account rules, the score of the prospects alone (top three)."""
    if account is None:
        return None
    kept = world.accounts.get(account)
    if rules.accounts is not None:
        if kept is None:
            return None  # a world that did not keep the account (the daemon's, read back)
        top = rules.accounts.top
        ranked = ranked_members(world, kept, at)
        score = kept.fit_points + sum(points for points, _ in ranked[:top])
        return account_view(world, kept, at, top, score, ranked)
    scores = account_scores(world.states.values(), at).get(account)
    if scores is None:
        return None
    return {
        "id": account,
        "traits": scores["traits"],
        "score": scores["score"],
        "fit_points": 0,
        "fit": [],
        "stage": None,
        "mqls": [],
        "members": scores["prospects"],
    }


def render_text(report: dict[str, Any]) -> str:
    """The explanation as plain text for a terminal."""
    lines = [
        f"prospect {report['prospect']}"
        + (f" (also {', '.join(report['aliases'])})" if report["aliases"] else ""),
        f"at {report['at']}: score {report['score']} "
        f"(fit {report['fit_points']}, behaviour {report['behaviour_points']}), stage {report['stage']}"
        + (", unsubscribed" if report["unsubscribed"] else ""),
        "",
        "score breakdown:",
    ]
    counted = [c for c in report["contributions"] if c["kind"] == "fit" or c["status"] == "active"]
    past = [c for c in report["contributions"] if c not in counted]
    for c in counted:
        lines.append("  " + _contribution(c))
    if not counted:
        lines.append("  (nothing counts)")
    if past:
        lines.append("no longer counting:")
        lines.extend("  " + _contribution(c) for c in past)
    lines.append("stage history:")
    for h in report["history"] or [{"at": "-", "stage": "lead", "rule": "(start)", "reason": None}]:
        reason = f" — {h['reason']}" if h.get("reason") else ""
        lines.append(f"  {h['at']}  {h['stage']:<9} {h['rule']}{reason}")
    lines.append("enrolments:")
    for e in report["enrolments"] or [{"sequence": "(none)", "since": "", "next_step": None}]:
        step = f", next step {e['next_step']}" if e["next_step"] else ""
        lines.append(f"  {e['sequence']} {('since ' + e['since']) if e['since'] else ''}{step}")
    lines.append("pending timers:")
    for t in report["timers"] or [{"due": "(none)", "kind": "", "name": None}]:
        lines.append(f"  {t['due']}  {t['kind']} {t['name'] or ''}".rstrip())
    account = report.get("account_detail")
    if account is not None:
        lines.extend(_account_lines(account))
    return "\n".join(lines)


def _account_lines(account: dict[str, Any]) -> list[str]:
    stage = f", stage {account['stage']}" if account["stage"] else ""
    lines = [
        f"account {account['id']}: score {account['score']} (fit {account['fit_points']}){stage}"
    ]
    for fit in account["fit"]:
        lines.append(f"  {fit['points']:+5d}  {fit['rule']:<24} account fit, since {fit['since']}")
    if account["mqls"]:
        lines.append(f"  account MQL at {', '.join(account['mqls'])}")
    for member in account["members"]:
        counts = "" if member.get("counts", True) else " (not in the top)"
        lines.append(f"  member {member['prospect']}: {member['score']}{counts}")
    return lines


def _contribution(c: dict[str, Any]) -> str:
    event = c.get("event") or {}
    what = event.get("event") or event.get("path") or event.get("type") or ""
    if c["kind"] == "fit":
        return f"{c['points']:+5d}  {c['rule']:<24} fit, since {c['since']}"
    expiry = f", expires {c['expires_at']}" if c.get("expires_at") else ""
    status = "" if c["status"] == "active" else f" [{c['status']}]"
    return f"{c['points']:+5d}  {c['rule']:<24} {what} at {c['at']}{expiry}{status}"
