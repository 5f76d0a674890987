"""The actions of a `then`, `on_mql`, `on_breach` or `on_reject`, run in order."""

from __future__ import annotations

from leadrules.engine.core import sequences
from leadrules.engine.core.ruleset import Action
from leadrules.engine.core.turn import Turn


def run(turn: Turn, actions: tuple[Action, ...], rule: str) -> None:
    """Run `actions` in order on behalf of `rule` (contract "Actions")."""
    for action in actions:
        kind = action.kind
        if kind == "notify":
            turn.emit("notify", rule, channel=action.channel, template=action.template)
        elif kind == "send":
            # A suppressed send is not a decision: unsubscribed, or over the channel's cap.
            if not turn.state.unsubscribed and sequences.send_allowed(turn, action.channel):
                turn.emit("send", rule, channel=action.channel, template=action.template)
        elif kind == "start_sequence":
            assert action.sequence is not None
            sequences.start(turn, action.sequence, rule)
        elif kind == "stop_sequence":
            assert action.sequence is not None
            sequences.stop(turn, action.sequence, rule)
