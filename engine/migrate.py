"""Schema migrations with Alembic, run programmatically at start-up (`Store.migrate`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config

if TYPE_CHECKING:
    from engine.store import Store

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def config(store: Store) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = store.engine
    return cfg


def upgrade(store: Store, revision: str = "head") -> None:
    command.upgrade(config(store), revision)
