"""The `World` over one database transaction: the daemon's twin of `MemoryWorld`.

States are loaded on first use and written back by `flush`, in the same transaction as the
decisions and timers they go with.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson
from sqlalchemy import insert
from sqlmodel import Session, col, delete, select

from engine.codec import decode, encode
from engine.state import ProspectState, Timer
from engine.store import AliasRow, ProspectRow, TimerRow


def timer_payload(timer: Timer) -> bytes:
    return orjson.dumps([timer.kind, timer.token, timer.name, timer.index, timer.origin_at])


def timer_from_row(row: TimerRow) -> Timer:
    kind, token, name, index, origin_at = orjson.loads(row.payload)
    return Timer(row.due_at, row.prospect, kind, token, name, index, origin_at)


class DbWorld:
    def __init__(self, session: Session, now_us: int) -> None:
        self.session = session
        self.now_us = now_us
        self.on_schedule: Callable[[Timer], bool] | None = None  # True: handled in memory
        self._new_timers: list[Timer] = []
        self._states: dict[str, ProspectState] = {}
        self._dropped: set[str] = set()
        self._aliases: dict[str, str | None] = {}

    def _alias(self, prospect: str) -> str | None:
        if prospect not in self._aliases:
            row = self.session.get(AliasRow, prospect)
            self._aliases[prospect] = row.canonical if row else None
        return self._aliases[prospect]

    def resolve(self, prospect: str) -> str:
        seen = {prospect}
        while (target := self._alias(prospect)) is not None and target not in seen:
            seen.add(target)
            prospect = target
        return prospect

    def get(self, prospect: str) -> ProspectState | None:
        if prospect in self._states:
            return self._states[prospect]
        if prospect in self._dropped:
            return None
        row = self.session.get(ProspectRow, prospect)
        if row is None:
            return None
        state = self._states[prospect] = decode(orjson.loads(row.state))
        return state

    def create(self, prospect: str) -> ProspectState:
        self._dropped.discard(prospect)
        state = self._states[prospect] = ProspectState(prospect)
        return state

    def link(self, alias: str, canonical: str) -> None:
        self._aliases[alias] = canonical
        self.session.merge(AliasRow(alias=alias, canonical=canonical))

    def drop(self, prospect: str) -> None:
        self._states.pop(prospect, None)
        self._dropped.add(prospect)

    def schedule(self, timer: Timer) -> None:
        if self.on_schedule is not None and self.on_schedule(timer):
            return  # due within the running batch: fired there, never stored
        self._new_timers.append(timer)

    def seen(self, message_id: str) -> bool:
        return False  # the event table's unique messageId already dropped duplicates at ingest

    def flush(self) -> None:
        """Write back every state this transaction touched, and the new timers."""
        if self._new_timers:
            self.session.execute(
                insert(TimerRow),
                [
                    {
                        "key": t.key,
                        "due_at": t.due,
                        "prospect": t.prospect,
                        "payload": timer_payload(t).decode(),
                    }
                    for t in self._new_timers
                ],
            )
            self._new_timers = []
        for prospect in self._dropped:
            self.session.execute(delete(ProspectRow).where(col(ProspectRow.id) == prospect))
        for prospect, state in self._states.items():
            self.session.merge(
                ProspectRow(
                    id=prospect,
                    state=orjson.dumps(encode(state)).decode(),
                    stage=state.stage,
                    updated_at=self.now_us,
                )
            )

    def load_all_timers(self) -> list[Timer]:
        rows = self.session.exec(
            select(TimerRow).order_by(col(TimerRow.due_at), col(TimerRow.seq))
        ).all()
        return [timer_from_row(r) for r in rows]
