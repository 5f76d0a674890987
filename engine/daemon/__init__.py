"""The daemon's edge: HTTP ingest, the store (SQLModel and Alembic migrations), the database world, the service, the outbox dispatcher, metrics, settings and the runtime that ties them together."""
