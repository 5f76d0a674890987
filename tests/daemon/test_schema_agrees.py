"""The SQLModel tables and the Alembic migrations describe the same schema: the migrations,
run on an empty database, leave nothing for autogenerate to add, drop or alter. A model
changed without a migration (or a migration without its model) fails here, on SQLite and on
PostgreSQL, instead of at a user's first start."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData
from sqlmodel import SQLModel

import leadrules.engine.daemon as daemon
from leadrules.engine.daemon.store import Store


def every_table() -> MetaData:
    """Every table any daemon module defines (not only those the migration environment
    happens to import)."""
    for module in pkgutil.walk_packages(daemon.__path__, daemon.__name__ + "."):
        if ".migrations" not in module.name:
            importlib.import_module(module.name)
    return SQLModel.metadata


def differences(url: str, metadata: MetaData | None = None) -> list[Any]:
    store = Store(url)
    try:
        store.migrate()
        with store.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, metadata or every_table()))
    finally:
        store.dispose()


def test_the_migrations_build_exactly_the_models(database_url: str) -> None:
    assert differences(database_url) == []


def test_a_model_without_its_migration_is_noticed(database_url: str) -> None:
    """The comparison is not blind: a column only the model has shows up."""
    models = MetaData()
    for table in every_table().tables.values():
        table.to_metadata(models)
    models.tables["decision"].append_column(sa.Column("only_in_the_model", sa.Integer))
    found = differences(database_url, models)
    assert [(d[0], d[2], d[3].name) for d in found] == [
        ("add_column", "decision", "only_in_the_model")
    ]
