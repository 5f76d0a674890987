"""Nurture sequences: enrolment, steps, waits and `exit_when`.

Contract "Sequences": steps run in order; a `wait` pauses; the steps up to the first wait are
decided at once, right after the `start_sequence` record. The enrolment ends after the last
step (no record) or when an `exit_when` entry matches (a `stop_sequence` record).
"""

from __future__ import annotations

from leadrules.engine.core.send_windows import EVERY_CHANNEL, under_cap
from leadrules.engine.core.state import Enrolment, Timer
from leadrules.engine.core.turn import Turn


def send_allowed(turn: Turn, channel: str | None) -> bool:
    """The channel's `send_cap` and the prospect's (`lifecycle.send_cap`, every channel
    together) let this send through (core.send_windows); it then counts towards both."""
    spec = turn.rules.channels.get(channel) if channel is not None else None
    caps = [] if spec is None or spec.send_cap is None else [(spec.name, spec.send_cap)]
    prospect_cap = turn.rules.lifecycle.send_cap
    if prospect_cap is not None:
        caps.append((EVERY_CHANNEL, prospect_cap))
    sends, at = turn.state.sends, turn.at
    if not all(under_cap(sends, key, cap, at) for key, cap in caps):
        return False
    for key, _ in caps:
        sends[key].append(at)
    return True


def start(turn: Turn, name: str, rule: str) -> None:
    """`start_sequence`: enrol unless already enrolled (then nothing, and no record)."""
    state = turn.state
    if name in state.enrolments:
        return
    enrolment = Enrolment(name, state.new_token(), turn.at, turn.origin)
    state.enrolments[name] = enrolment
    turn.emit("start_sequence", rule, sequence=name)
    if _stage_exits(turn, name):
        # Already in a stage the sequence exits on: the enrolment ends at once.
        stop(turn, name, f"sequence:{name}")
        return
    run_steps(turn, enrolment)


def stop(turn: Turn, name: str, rule: str) -> None:
    """Leave a sequence; a `stop_sequence` record only when the prospect was enrolled."""
    if turn.state.enrolments.pop(name, None) is not None:
        turn.emit("stop_sequence", rule, sequence=name)


def run_steps(turn: Turn, enrolment: Enrolment) -> None:
    """Run steps from `enrolment.next_step` up to the next wait (or the end)."""
    state = turn.state
    sequence = turn.rules.sequences[enrolment.sequence]
    steps = sequence.steps
    rule = f"sequence:{sequence.name}"
    while enrolment.next_step < len(steps):
        index = enrolment.next_step
        step = steps[index]
        enrolment.next_step += 1
        if step.kind == "wait":
            assert step.wait_us is not None
            turn.schedule(
                Timer(
                    turn.at + step.wait_us,
                    state.id,
                    "step",
                    enrolment.token,
                    sequence.name,
                    index + 1,
                )
            )
            return
        if step.kind == "send" and (state.unsubscribed or not send_allowed(turn, step.channel)):
            continue  # contract: a suppressed send is not a decision (so is a capped one)
        turn.emit(
            step.kind,
            rule,
            channel=step.channel,
            template=step.template,
            sequence=sequence.name,
            step=index + 1,
        )
    # The natural end writes no record.
    if state.enrolments.get(sequence.name) is enrolment:
        del state.enrolments[sequence.name]


def on_step_timer(turn: Turn, timer: Timer) -> None:
    """A wait is over: continue the enrolment if it is still the one that waited."""
    enrolment = turn.state.enrolments.get(timer.name)
    if enrolment is None or enrolment.token != timer.token:
        return
    run_steps(turn, enrolment)


def _stage_exits(turn: Turn, name: str) -> bool:
    return any(test(turn.state.stage) for test in turn.compiled.stage_exits.get(name, ()))


def exit_on_stage(turn: Turn) -> None:
    """After a stage change: end the enrolments whose `exit_when` names the new stage."""
    for name in list(turn.state.enrolments):
        if _stage_exits(turn, name):
            stop(turn, name, f"sequence:{name}")


def exit_on_event(turn: Turn, matched: set[int]) -> None:
    """End the enrolments an `exit_when` event entry matches. An enrolment made while
    handling this same event is not ended by it."""
    exits = turn.compiled.exit_matches
    for name, enrolment in list(turn.state.enrolments.items()):
        if enrolment.origin == turn.origin:
            continue
        if any(i in matched for i in exits.get(name, ())):
            stop(turn, name, f"sequence:{name}")
