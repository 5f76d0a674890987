"""The `World` over one database transaction: the daemon's twin of `MemoryWorld`.

States and aliases a batch needs are read in one query each (`prefetch`), kept in memory
while the batch is evaluated, and written back by `flush` with one bulk upsert, in the same
transaction as the decisions and timers they go with.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import orjson
from sqlalchemy import delete, insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from leadrules.engine.core.state import ProspectState, Timer
from leadrules.engine.daemon.account_store import DbAccounts
from leadrules.engine.daemon.codec import decode, decode_timer, encode, encode_timer
from leadrules.engine.daemon.store import AliasRow, ProspectRow, TimerRow


def timer_payload(timer: Timer) -> bytes:
    return orjson.dumps(encode_timer(timer))


def timer_from_row(row: TimerRow) -> Timer:
    return decode_timer(row.due_at, row.prospect, orjson.loads(row.payload))


class DbWorld:
    def __init__(self, session: Session, now_us: int) -> None:
        self.session = session
        self.now_us = now_us
        self.on_schedule: Callable[[Timer], bool] | None = None  # True: handled in memory
        self.on_link: Callable[[str, str], None] | None = None  # (alias, canonical) merged
        self._new_timers: list[Timer] = []
        self._states: dict[str, ProspectState] = {}
        self._absent: set[str] = set()  # known not to have a stored state
        self._dropped: set[str] = set()
        self._aliases: dict[str, str | None] = {}
        self._new_aliases: dict[str, str] = {}
        self._peeked: dict[str, ProspectState | None] = {}
        self.accounts = DbAccounts(session)  # used when the rules have accounts
        self._upsert = (
            pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        )

    def prefetch(self, ids: Iterable[str]) -> None:
        """Read the states and aliases of `ids` in one query each."""
        wanted = [i for i in set(ids) if i not in self._aliases]
        if not wanted:
            return
        aliases = self.session.exec(select(AliasRow).where(col(AliasRow.alias).in_(wanted))).all()
        found = {a.alias: a.canonical for a in aliases}
        for i in wanted:
            self._aliases[i] = found.get(i)
        targets = {found.get(i, i) for i in wanted} - set(self._states)
        rows = self.session.exec(select(ProspectRow).where(col(ProspectRow.id).in_(targets))).all()
        for row in rows:
            self._states[row.id] = decode(orjson.loads(row.state))
        self._absent.update(targets - {row.id for row in rows})

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
        if prospect in self._dropped or prospect in self._absent:
            return None
        row = self.session.get(ProspectRow, prospect)
        if row is None:
            self._absent.add(prospect)
            return None
        state = self._states[prospect] = decode(orjson.loads(row.state))
        return state

    def peek(self, prospect: str) -> ProspectState | None:
        """A state read and never written back (an account's other members, for its
        score): the transaction that owns it may be another worker's."""
        if prospect in self._states:
            return self._states[prospect]
        if prospect in self._dropped:
            return None
        if prospect not in self._peeked:
            row = self.session.get(ProspectRow, prospect)
            self._peeked[prospect] = None if row is None else decode(orjson.loads(row.state))
        return self._peeked[prospect]

    def create(self, prospect: str) -> ProspectState:
        self._dropped.discard(prospect)
        state = self._states[prospect] = ProspectState(prospect)
        return state

    def link(self, alias: str, canonical: str) -> None:
        self._aliases[alias] = canonical
        self._new_aliases[alias] = canonical
        if self.on_link is not None:
            self.on_link(alias, canonical)

    def drop(self, prospect: str) -> None:
        self._states.pop(prospect, None)
        self._dropped.add(prospect)

    def schedule(self, timer: Timer) -> None:
        if self.on_schedule is not None and self.on_schedule(timer):
            return  # due within the running batch: held by its queue
        self._new_timers.append(timer)

    def store_timer(self, timer: Timer) -> None:
        """Store a timer the batch's queue held but did not fire."""
        self._new_timers.append(timer)

    def seen(self, message_id: str) -> bool:
        return False  # the event table's unique messageId already dropped duplicates at ingest

    def flush(self) -> None:
        """Write back every state this transaction touched, new aliases and new timers."""
        session = self.session
        self.accounts.flush(self.now_us)
        if self._dropped:
            session.execute(delete(ProspectRow).where(col(ProspectRow.id).in_(list(self._dropped))))
        if self._states:
            rows: list[dict[str, Any]] = [
                {
                    "id": pid,
                    "state": orjson.dumps(encode(state)).decode(),
                    "stage": state.stage,
                    "updated_at": self.now_us,
                }
                for pid, state in self._states.items()
            ]
            stmt = self._upsert(ProspectRow)
            stmt = stmt.on_conflict_do_update(
                index_elements=["id"],
                set_={
                    "state": stmt.excluded.state,
                    "stage": stmt.excluded.stage,
                    "updated_at": stmt.excluded.updated_at,
                },
            )
            session.execute(stmt, rows)
        if self._new_aliases:
            stmt = self._upsert(AliasRow)
            stmt = stmt.on_conflict_do_update(
                index_elements=["alias"], set_={"canonical": stmt.excluded.canonical}
            )
            session.execute(
                stmt, [{"alias": a, "canonical": c} for a, c in self._new_aliases.items()]
            )
            self._new_aliases = {}
        if self._new_timers:
            session.execute(
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

    def load_all_timers(self) -> list[Timer]:
        rows = self.session.exec(
            select(TimerRow).order_by(col(TimerRow.due_at), col(TimerRow.seq))
        ).all()
        return [timer_from_row(r) for r in rows]
