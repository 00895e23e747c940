"""Alembic migration environment for Greenlight's database (see `app.store.migrate`)."""
