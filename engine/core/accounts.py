"""Accounts (ABM): a `group` message attaches its prospect to an account (`groupId`) with
the account's traits (merged, later values win).

The account score is documented as: the sum of the `TOP` highest scores of its prospects
(behaviour and fit points, each prospect's score at the time asked). It is computed from
the prospects' states when asked (explain, replay, report), so it adds no decision record.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from leadrules.engine.core.events import Event
from leadrules.engine.core.state import ProspectState

TOP = 3


def attach(state: ProspectState, event: Event) -> None:
    """A `group` message: the prospect belongs to `groupId` from now on."""
    group = event.raw.get("groupId")
    if not isinstance(group, str) or not group:
        return
    if state.account != group:
        state.account, state.account_traits = group, {}
    state.account_traits.update(event.traits)


def account_scores(
    states: Iterable[ProspectState], at: int, top: int = TOP
) -> dict[str, dict[str, Any]]:
    """Each account's score (sum of its top `top` prospect scores), prospects and traits."""
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
