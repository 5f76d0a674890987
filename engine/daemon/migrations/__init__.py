"""Alembic migrations of the daemon's database (run by `Store.migrate`)."""
