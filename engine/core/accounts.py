"""Accounts (ABM): a `group` message attaches its prospect to an account (`groupId`) with the
account's traits (merged, later values win).

The account score (docs/rules.md, "Accounts") is the account's fit points plus the sum of
the `top` highest scores of its prospects (each prospect's whole score, fit and behaviour,
at the time asked). With an `accounts:` section the account lives in the world's account
book (core.account_state): fit rules over its traits, an MQL threshold whose `on_mql`
notifies sales, account triggers (core.account_triggers). Without one, accounts are only
kept on the prospects and `account_scores` computes the score (top three) when asked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cache
from typing import Any, Protocol

from leadrules.engine.core.account_state import AccountBook, AccountState
from leadrules.engine.core.events import Event
from leadrules.engine.core.predicates import trait_predicate
from leadrules.engine.core.ruleset import Match
from leadrules.engine.core.state import Decision, FitEntry, ProspectState
from leadrules.engine.core.turn import Turn, World, template_context
from leadrules.engine.timefmt import format_at, format_iso

TOP = 3
MQL_RULE = "accounts.mql"


class States(Protocol):
    """Where the members' states are read: a `World`, or a mapping of id to state."""

    def get(self, prospect: str, /) -> ProspectState | None: ...


def attach(state: ProspectState, event: Event) -> None:
    """A `group` message: the prospect belongs to `groupId` from now on."""
    group = event.raw.get("groupId")
    if not isinstance(group, str) or not group:
        return
    if state.account != group:
        state.account, state.account_traits = group, {}
    state.account_traits.update(event.traits)


def book_of(world: World) -> AccountBook | None:
    """The world's account book, or None for a world that keeps no accounts."""
    found: AccountBook | None = getattr(world, "accounts", None)
    return found


def account_of(turn: Turn) -> AccountState | None:
    """The account of the turn's prospect, when the rules use accounts."""
    account = turn.state.account
    if account is None or turn.rules.accounts is None:
        return None
    book = book_of(turn.world)
    return None if book is None else book.get(account)


def member_score(state: ProspectState, at: int) -> int:
    """`state.score(at)` without dropping expired points from the state: reading another
    prospect's score must not change that prospect."""
    score = state.fit_points + state.behaviour_points
    heap = state.expiring
    if not heap or heap[0][0] > at:
        return score  # nothing due: the usual case
    # The due entries of a heap: a walk from the root that stops where an entry is not due
    # (its children are due no earlier).
    size, below = len(heap), [0]
    while below:
        i = below.pop()
        due, _, entry = heap[i]
        if due > at:
            continue
        if entry.state == "active":
            score -= entry.points
        child = 2 * i + 1
        if child < size:
            below.append(child)
            if child + 1 < size:
                below.append(child + 1)
    return score


def _reader(world: States) -> Callable[[str], ProspectState | None]:
    """How to read a member's state: a store's `peek` reads without writing it back."""
    peek: Callable[[str], ProspectState | None] | None = getattr(world, "peek", None)
    return peek if peek is not None else world.get


def _scored(world: States, account: AccountState, at: int) -> list[tuple[int, str]]:
    """(score, prospect) of every member, in the account's order."""
    read = _reader(world)
    scored = []
    for prospect in account.members:
        state = read(prospect)
        if state is not None:
            scored.append((member_score(state, at), prospect))
    return scored


def ranked_members(world: States, account: AccountState, at: int) -> list[tuple[int, str]]:
    """(score, prospect) of every member, highest score first (ties by id)."""
    scored = _scored(world, account, at)
    scored.sort(key=lambda item: (-item[0], item[1]))
    return scored


def account_score(world: States, account: AccountState, at: int, top: int) -> int:
    """Fit points plus the sum of the `top` highest member scores (which members tie does
    not change the sum: the scores alone are sorted)."""
    scores = sorted((score for score, _ in _scored(world, account, at)), reverse=True)
    return account.fit_points + sum(scores[:top])


@cache
def _fit_test(match: Match) -> Callable[[dict[str, Any]], bool]:
    return trait_predicate(match)


def refresh_fit(turn: Turn, account: AccountState) -> None:
    """Re-evaluate the account fit rules against the account's traits."""
    rules = turn.rules.accounts
    if rules is None:
        return
    for rule in rules.fit:
        holds = _fit_test(rule.match)(account.traits)
        had = rule.id in account.fit
        if holds and not had:
            account.fit[rule.id] = FitEntry(rule.id, rule.points, turn.at, {})
            account.fit_points += rule.points
        elif had and not holds:
            del account.fit[rule.id]
            account.fit_points -= rule.points


def on_group(turn: Turn, event: Event) -> None:
    """A `group` message: the prospect joins `groupId` (leaving its former account), and
    the account's traits take the message's traits."""
    state = turn.state
    former = state.account
    attach(state, event)
    if turn.rules.accounts is None or state.account is None:
        return
    book = book_of(turn.world)
    if book is None:
        return
    _in_order(book, former, state.account)
    if former is not None and former != state.account:
        left = book.get(former)
        if left is not None:
            left.remove_member(state.id)
    account = book.get(state.account) or book.create(state.account)
    account.add_member(state.id)
    account.traits.update(event.traits)
    account.last_at = max(account.last_at, turn.at)
    refresh_fit(turn, account)


def on_merge(world: World, into: ProspectState, src: str, src_account: str | None) -> None:
    """`src` was merged into `into`: the account that listed `src` no longer does, the
    merged prospect's account lists it, and the account triggers' counts name it."""
    book = book_of(world)
    if book is None:
        return
    _in_order(book, src_account, into.account)
    if src_account is not None:
        former = book.get(src_account)
        if former is not None:
            former.remove_member(src)
            for tstate in former.triggers.values():
                tstate.unused = sorted((ts, into.id if p == src else p) for ts, p in tstate.unused)
    if into.account is not None:
        account = book.get(into.account) or book.create(into.account)
        account.add_member(into.id)


def account_time(turn: Turn, account: AccountState) -> int:
    """When the account decides: the turn's time, or the account's latest time if a member
    evaluated later already (a late event live: an account's records never go back in
    time, as a prospect's do not). In timestamp order it is always the turn's time."""
    at = max(turn.at, account.last_at)
    account.last_at = at
    return at


def _in_order(book: AccountBook, *accounts: str | None) -> None:
    """Read the accounts a turn changes in one order (by id): a store that locks what it
    reads (PostgreSQL's FOR UPDATE) then never has two turns wait on each other."""
    for account in sorted({a for a in accounts if a is not None}):
        book.get(account)


def check_mql(turn: Turn) -> None:
    """After a member's event or timer: an account whose score reaches the account MQL
    threshold becomes an MQL and runs `on_mql`; one below it is a lead again (no record),
    so it must climb again to be an MQL again."""
    rules = turn.rules.accounts
    account = account_of(turn)
    if rules is None or account is None:
        return
    at = account_time(turn, account)
    if rules.mql_threshold is None:
        return
    score = account_score(turn.world, account, at, rules.top)
    if account.stage == "mql":
        if score < rules.mql_threshold:
            account.stage = "lead"
        return
    if score < rules.mql_threshold:
        return
    account.stage = "mql"
    account.mqls.append(at)
    for action in rules.on_mql:
        emit(turn, account, MQL_RULE, action.channel, action.template, at)


def emit(
    turn: Turn,
    account: AccountState,
    rule: str,
    channel: str | None,
    template: str | None,
    at: int,
) -> None:
    """An account decision at `at` (`account_time`): a `notify` record naming the account,
    with the account's score and stage; `prospect` is the member whose event or timer
    decided it."""
    rules = turn.rules.accounts
    top = TOP if rules is None else rules.top
    ranked = ranked_members(turn.world, account, at)
    score = account.fit_points + sum(s for s, _ in ranked[:top])
    record: dict[str, Any] = {
        "at": format_at(at),
        "prospect": turn.state.id,
        "account": account.id,
        "action": "notify",
        "rule": rule,
    }
    if channel is not None:
        record["channel"] = channel
    if template is not None:
        record["template"] = template
    record["score"] = score
    record["stage"] = account.stage
    context = None
    if turn.options.capture_context:
        context = template_context(turn.state, record, at, turn.rules)
        context["score"] = member_score(turn.state, at)  # the prospect's, as everywhere else
        context["stage"] = turn.state.stage
        context["account"] = account_view(turn.world, account, at, top, score, ranked)
    key = f"{turn.origin}/{len(turn.decisions)}"
    turn.decisions.append(Decision(record, key, context))


def account_view(
    world: States,
    account: AccountState,
    at: int,
    top: int,
    score: int,
    ranked: list[tuple[int, str]],
) -> dict[str, Any]:
    """The account as templates, explain and report show it: score, fit, stage, MQLs and
    its members, highest score first, each with the rules behind its score."""
    members = []
    read = _reader(world)
    for n, (member_points, prospect) in enumerate(ranked):
        state = read(prospect)
        reasons = [] if state is None else _top_reasons(state)
        members.append(
            {
                "prospect": prospect,
                "name": None if state is None else state.traits.get("name"),
                "score": member_points,
                "stage": None if state is None else state.stage,
                "counts": n < top,
                "reasons": reasons,
            }
        )
    return {
        "id": account.id,
        "traits": dict(account.traits),
        "score": score,
        "fit_points": account.fit_points,
        "fit": [
            {"rule": f.rule, "points": f.points, "since": format_iso(f.since)}
            for f in account.fit.values()
        ],
        "stage": account.stage,
        "mqls": [format_iso(t) for t in account.mqls],
        "members": members,
    }


def _top_reasons(state: ProspectState, n: int = 3) -> list[dict[str, Any]]:
    points = state.points_by_rule()
    ordered = sorted(points.items(), key=lambda item: (-abs(item[1]), item[0]))
    return [{"rule": rule, "points": p} for rule, p in ordered[:n] if p]


def account_counts(book: Iterable[AccountState]) -> tuple[int, int]:
    """How many accounts the rules kept, and how many account MQLs they had."""
    accounts = mqls = 0
    for account in book:
        accounts += 1
        mqls += len(account.mqls)
    return accounts, mqls


def account_scores(
    states: Iterable[ProspectState], at: int, top: int = TOP
) -> dict[str, dict[str, Any]]:
    """Each account's score (sum of its top `top` prospect scores), prospects and traits,
    from the prospects alone (rules without an `accounts:` section)."""
    members: dict[str, list[tuple[int, str]]] = {}
    traits: dict[str, dict[str, Any]] = {}
    for state in states:
        if state.account is None:
            continue
        members.setdefault(state.account, []).append((state.score(at), state.id))
        traits.setdefault(state.account, {}).update(state.account_traits)
    out = {}
    for account, scored in sorted(members.items()):
        scored.sort(key=lambda item: (-item[0], item[1]))
        out[account] = {
            "score": sum(score for score, _ in scored[:top]),
            "prospects": [{"prospect": pid, "score": score} for score, pid in scored],
            "traits": traits[account],
        }
    return out
