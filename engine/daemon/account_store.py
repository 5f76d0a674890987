"""Accounts in the daemon's store: the `account` table (one versioned JSON document per
account, like `prospect.state`) and the account book a `DbWorld` evaluates against.

An account is read when a member's event or timer needs it and written back in the same
transaction as the member's state and decisions. On PostgreSQL the row is read `FOR
UPDATE`, so two transactions that touch one account (members evaluated by two workers)
run one after the other and neither loses the other's update. The members' own states are
only read for the account score, never written (`DbWorld.peek`).
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import BigInteger, Column, Text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, Session, SQLModel, select

from leadrules.engine.core.account_state import AccountState, AccountTriggerState
from leadrules.engine.core.state import FitEntry
from leadrules.engine.errors import LeadrulesError

VERSION = 1


class AccountRow(SQLModel, table=True):
    __tablename__ = "account"
    id: str = Field(primary_key=True, max_length=300)
    state: str = Field(sa_column=Column(Text, nullable=False))
    stage: str = Field(max_length=16)
    updated_at: int = Field(sa_column=Column(BigInteger, nullable=False))


class AccountDocumentError(LeadrulesError):
    """A stored account document this version cannot read."""


def encode_account(account: AccountState) -> dict[str, Any]:
    return {
        "version": VERSION,
        "id": account.id,
        "traits": account.traits,
        "members": account.members,
        "fit": {
            key: {"rule": f.rule, "points": f.points, "since": f.since}
            for key, f in account.fit.items()
        },
        "fit_points": account.fit_points,
        "stage": account.stage,
        "mqls": account.mqls,
        "triggers": {
            key: {"unused": [[ts, p] for ts, p in t.unused], "last_fired": t.last_fired}
            for key, t in account.triggers.items()
        },
        "last_at": account.last_at,
    }


def decode_account(doc: dict[str, Any]) -> AccountState:
    if doc.get("version") != VERSION:
        raise AccountDocumentError(
            f"account {doc.get('id')!r}: document version {doc.get('version')!r} is not "
            f"readable by this leadrules (it reads {VERSION})"
        )
    stage = doc["stage"]
    if stage not in ("lead", "mql"):
        raise AccountDocumentError(f"account {doc['id']!r}: unknown stage {stage!r}")
    return AccountState(
        id=doc["id"],
        traits=doc["traits"],
        members=list(doc["members"]),
        fit={
            key: FitEntry(f["rule"], f["points"], f["since"], {}) for key, f in doc["fit"].items()
        },
        fit_points=doc["fit_points"],
        stage=stage,
        mqls=list(doc["mqls"]),
        triggers={
            key: AccountTriggerState([(ts, p) for ts, p in t["unused"]], t["last_fired"])
            for key, t in doc["triggers"].items()
        },
        last_at=doc["last_at"],
    )


class DbAccounts:
    """The account book of one transaction: rows read on first use, written by `flush`."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._loaded: dict[str, AccountState | None] = {}
        self._postgres = session.get_bind().dialect.name == "postgresql"

    def get(self, account: str) -> AccountState | None:
        if account not in self._loaded:
            query = select(AccountRow).where(AccountRow.id == account)
            if self._postgres:
                query = query.with_for_update()
            row = self.session.exec(query).first()
            self._loaded[account] = None if row is None else decode_account(orjson.loads(row.state))
        return self._loaded[account]

    def create(self, account: str) -> AccountState:
        """A new account, or the one another transaction made meanwhile: on PostgreSQL an
        empty row is inserted first (waiting for a concurrent insert of the same id to end),
        then read and locked, so two workers never each make their own."""
        if self.get(account) is None and self._postgres:
            empty = AccountState(account)
            row = {
                "id": account,
                "state": orjson.dumps(encode_account(empty)).decode(),
                "stage": empty.stage,
                "updated_at": empty.last_at,
            }
            self.session.execute(pg_insert(AccountRow).on_conflict_do_nothing(), [row])
            del self._loaded[account]
            self.get(account)
        state = self._loaded[account] or AccountState(account)
        self._loaded[account] = state
        return state

    def flush(self, now_us: int) -> None:
        """Write back every account this transaction read or made."""
        rows = [
            {
                "id": account.id,
                "state": orjson.dumps(encode_account(account)).decode(),
                "stage": account.stage,
                "updated_at": now_us,
            }
            for account in self._loaded.values()
            if account is not None
        ]
        if not rows:
            return
        upsert = pg_insert if self._postgres else sqlite_insert
        stmt = upsert(AccountRow)
        stmt = stmt.on_conflict_do_update(
            index_elements=["id"],
            set_={
                "state": stmt.excluded.state,
                "stage": stmt.excluded.stage,
                "updated_at": stmt.excluded.updated_at,
            },
        )
        self.session.execute(stmt, rows)


def forget_members(session: Session, ids: list[str]) -> int:
    """`leadrules forget`: take `ids` out of every account (its members and its account
    triggers' counts). Returns how many accounts changed."""
    gone = set(ids)
    changed = 0
    for row in session.exec(select(AccountRow)).all():
        if not any(f'"{i}"' in row.state for i in gone):  # the id as a JSON string
            continue
        account = decode_account(orjson.loads(row.state))
        members = [m for m in account.members if m not in gone]
        triggers = {
            key: AccountTriggerState([e for e in t.unused if e[1] not in gone], t.last_fired)
            for key, t in account.triggers.items()
        }
        if members == account.members and triggers == account.triggers:
            continue
        account.members, account.triggers = members, triggers
        row.state = orjson.dumps(encode_account(account)).decode()
        session.add(row)
        changed += 1
    return changed
