"""The privacy audit trail: one row per erasure (`leadrules forget`) or export of one
prospect's data — who, what, when and how many rows, never the data itself.

The prospect is recorded by the SHA-256 of its id, not the id: the trail must outlive the
erased data without keeping it, yet answer "was this person erased, and when?" for an id
someone asks about (hash the id and look it up)."""

from __future__ import annotations

import hashlib

from sqlalchemy import BigInteger, Column, Text
from sqlmodel import Field, SQLModel


class PrivacyAuditRow(SQLModel, table=True):
    __tablename__ = "privacy_audit"
    id: int | None = Field(default=None, primary_key=True)
    at: int = Field(sa_column=Column(BigInteger, nullable=False))  # microseconds, UTC
    action: str = Field(max_length=16)  # forget | export
    operator: str = Field(max_length=200)  # who asked (--by, else the OS user)
    subject_sha256: str = Field(max_length=64, index=True)
    counts: str = Field(sa_column=Column(Text, nullable=False))  # JSON: table -> rows
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


def subject_hash(prospect: str) -> str:
    return hashlib.sha256(prospect.encode()).hexdigest()
