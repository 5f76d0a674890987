"""Alembic environment: the engine comes from the running Store."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import leadrules.engine.daemon.account_store  # the accounts table
import leadrules.engine.daemon.audit  # the privacy audit table
import leadrules.engine.daemon.shadow_store  # the shadow rule set's tables
import leadrules.engine.daemon.store
import leadrules.engine.daemon.worker_store  # noqa: F401 - registers the tables on SQLModel.metadata

connectable = context.config.attributes["engine"]
with connectable.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
