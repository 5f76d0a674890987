"""Shared fixtures: real local receivers, and a database per backend (SQLite, PostgreSQL)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from leadrules.engine.daemon.store import Store
from tests.receivers import HttpReceiver, SmtpReceiver, http_receiver, smtp_receiver


@pytest.fixture
def http() -> Iterator[HttpReceiver]:
    yield from http_receiver()


@pytest.fixture
def smtp() -> Iterator[SmtpReceiver]:
    yield from smtp_receiver()


def postgres_url() -> str | None:
    return os.environ.get("LEADRULES_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a new schema-less database on PostgreSQL
    (LEADRULES_TEST_POSTGRES_URL). In CI a missing PostgreSQL is a failure, not a skip."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/leadrules.db"
        return
    yield from fresh_postgres_database()


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """A migrated database of each backend (`database_url`)."""
    yield from migrated(database_url)


def migrated(url: str) -> Iterator[Store]:
    store = Store(url)
    store.migrate()
    yield store
    store.dispose()


@pytest.fixture
def postgres_database_url() -> Iterator[str]:
    """A fresh, empty database on PostgreSQL, for what only PostgreSQL does."""
    yield from fresh_postgres_database()


def fresh_postgres_database() -> Iterator[str]:
    base = postgres_url()
    if base is None:
        if os.environ.get("CI"):
            pytest.fail(
                "LEADRULES_TEST_POSTGRES_URL is not set in CI: .ci/run must start PostgreSQL"
            )
        pytest.skip(
            "PostgreSQL tests need LEADRULES_TEST_POSTGRES_URL (bash .ci/postgres.sh prints one)"
        )
    import psycopg

    name = f"lr_{uuid.uuid4().hex[:12]}"
    admin = base.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
