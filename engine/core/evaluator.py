"""The evaluator: one event or one timer in, decision records out. Replay and daemon share it.

Order for one event (contract "Scoring", "Lifecycle", "Triggers", "Sequences"): identity and
traits, scoring, the stage change scoring causes (and its `on_mql`), sales feedback, sequence
exits, then triggers (a prospect's and its account's, in file order), then the account MQL
check (core.accounts). Within each step, rules run in file order.

Two times: the event's timestamp places it in windows (points, `limit`, `times`/`within`,
`unless`); the turn's time is when it is decided: the timestamp, or, for a late event (one
older than something already evaluated for its prospect), the prospect's latest time. In
timestamp order the two are always equal (docs/rules.md, "Late events").
"""

from __future__ import annotations

from leadrules.engine.core import (
    account_triggers,
    accounts,
    identity,
    lifecycle,
    scoring,
    sequences,
    triggers,
)
from leadrules.engine.core.events import Event
from leadrules.engine.core.ruleset import RuleSet
from leadrules.engine.core.state import RECENT_EVENTS, Decision, ProspectState, Timer
from leadrules.engine.core.turn import Compiled, Options, Turn, World


class Evaluator:
    """Applies a compiled rule set to events and timers against a `World`."""

    def __init__(self, compiled: Compiled, world: World, options: Options | None = None) -> None:
        self.compiled = compiled
        self.world = world
        self.options = options or Options()

    @classmethod
    def for_rules(
        cls,
        rules: RuleSet,
        world: World,
        *,
        matcher: str = "python",
        options: Options | None = None,
    ) -> Evaluator:
        return cls(Compiled.build(rules, matcher), world, options)

    def on_event(self, event: Event) -> list[Decision] | None:
        """Evaluate one event. Returns None for a duplicate `messageId` (ignored)."""
        world = self.world
        if world.seen(event.message_id):
            return None
        at = event.ts
        compiled = self.compiled
        state, before, merged = self._identity(event)
        if at >= state.last_at:
            state.last_at = now = at
        else:
            now = state.last_at  # a late event: decided at the prospect's latest time
        turn = Turn(compiled, world, self.options, state, now, event.message_id)

        kind = event.type
        traits_changed = merged
        if kind == "identify" and event.traits:
            if before is None:
                before = state.score(now)
            traits_changed = self._set_traits(state, event) or traits_changed
        if kind == "group":
            accounts.on_group(turn, event)
        if traits_changed:
            scoring.refresh_fit(turn, event)
        described = scoring.describe_event(event)
        if kind == "track" or kind == "page":
            recent = state.recent
            recent.append(described)
            if len(recent) > RECENT_EVENTS:
                del recent[0]
            if kind == "track" and event.event == "Unsubscribed":
                state.unsubscribed = True

        matched_list = compiled.matcher.match(event, state.traits)
        n_behaviour = compiled.n_behaviour
        if matched_list and matched_list[0] < n_behaviour:
            if before is None:
                before = state.score(now)
            behaviour = compiled.behaviour
            for index in matched_list:
                if index >= n_behaviour:
                    break
                scoring.award(turn, behaviour[index][1], event, described)
        if before is not None:  # only points or traits can move the score here
            lifecycle.check_mql(turn, before)
        if kind == "track" and event.event in lifecycle.FEEDBACK_EVENTS:
            lifecycle.on_feedback(turn, event)
        if matched_list:
            matched = set(matched_list)
            if state.enrolments:
                sequences.exit_on_event(turn, matched)
            triggers.cancel_absences(turn, matched, at)
            for index, trigger in compiled.trigger_when:
                if index in matched:
                    if trigger.scope == "account":
                        account_triggers.consider(turn, trigger, at)
                    else:
                        triggers.consider(turn, trigger, at)
        if state.account is not None and compiled.rules.accounts is not None:
            accounts.check_mql(turn)  # last: after the event's own triggers
        if state.inactive > scoring.COMPACT_AFTER and not self.options.keep_history:
            scoring.compact(state)
        return turn.decisions

    def on_timer(self, timer: Timer) -> list[Decision]:
        """Evaluate one due timer at its due time."""
        world = self.world
        state = world.get(world.resolve(timer.prospect))
        if state is None:
            return []
        if timer.due > state.last_at:
            state.last_at = timer.due
        turn = Turn(self.compiled, world, self.options, state, timer.due, f"timer:{timer.key}")
        kind = timer.kind
        if kind == "step":
            sequences.on_step_timer(turn, timer)
        elif kind == "sla":
            lifecycle.on_sla_timer(turn, timer)
        elif kind == "absence":
            triggers.on_absence_timer(turn, timer)
        elif kind == "expiry":
            if state.expiry_check is None or state.expiry_check[1] != timer.token:
                return turn.decisions  # superseded by an earlier check
            state.expiry_check = None
            state.expire(timer.due, before=True)
            lifecycle.check_mql(turn, state.fit_points + state.behaviour_points)
            following = scoring.next_negative_expiry(state, timer.due)
            if following is not None:
                scoring.schedule_expiry_check(turn, following)
            if state.account is not None and self.compiled.rules.accounts is not None:
                accounts.check_mql(turn)
        return turn.decisions

    def obsolete(self, timer: Timer) -> str | None:
        """Why `timer` can no longer run (a reload removed its sequence or trigger), or None.
        What waited on it is forgotten, so the prospect's state stays consistent."""
        kind, name = timer.kind, timer.name
        if kind == "step" and name not in self.compiled.rules.sequences:
            reason = f"sequence {name!r} is no longer in the rules"
        elif kind == "absence" and name not in self.compiled.triggers_by_id:
            reason = f"trigger {name!r} is no longer in the rules"
        else:
            return None
        world = self.world
        state = world.get(world.resolve(timer.prospect))
        if state is not None:
            if kind == "step":
                enrolment = state.enrolments.get(name)
                if enrolment is not None and enrolment.token == timer.token:
                    del state.enrolments[name]
            elif name in state.triggers:
                state.triggers[name].absences.pop(timer.token, None)
        return reason

    def _identity(self, event: Event) -> tuple[ProspectState, int | None, bool]:
        """Resolve the event's prospect, merging an anonymous id it links to a known one.
        Returns the state, the score before this event when a merge happened or the prospect
        is new (else None: it is computed only if something may change it), and whether its
        fit rules are to be evaluated (a merge, or a new prospect)."""
        world, at = self.world, event.ts
        prospect = world.resolve(event.prospect)
        state = world.get(prospect)
        kind = event.type
        if kind != "identify" and kind != "alias":
            return self._found(prospect, state)
        link = None
        if kind == "identify" and event.user_id and event.anonymous_id:
            link = event.anonymous_id
        elif kind == "alias" and event.previous_id:
            link = event.previous_id
        if link is None or link == prospect or world.resolve(link) != link:
            return self._found(prospect, state)
        other = world.get(link)
        world.link(link, prospect)
        if other is None:
            return self._found(prospect, state)
        before = (state or other).score(at)
        if state is None:
            state = world.create(prospect)
        other_account = other.account
        identity.merge(state, other)
        world.drop(link)
        if self.compiled.rules.accounts is not None:
            accounts.on_merge(world, state, link, other_account)
        return state, before, True

    def _found(
        self, prospect: str, state: ProspectState | None
    ) -> tuple[ProspectState, int | None, bool]:
        """`state`, or a new prospect's: no traits yet, which some fit rules are met by
        (`exists: false`, `not`), and they count from its first event (contract "Scoring")."""
        if state is not None:
            return state, None, False
        if not self.compiled.fit:
            return self.world.create(prospect), None, False
        return self.world.create(prospect), 0, True

    @staticmethod
    def _set_traits(state: ProspectState, event: Event) -> bool:
        """`identify` merges traits; a later-timestamped value wins."""
        changed = False
        at = event.ts
        for key, value in event.traits.items():
            if at >= state.trait_at.get(key, at):
                if state.traits.get(key, ...) != value:
                    changed = True
                state.traits[key] = value
                state.trait_at[key] = at
        return changed
