"""Persistence: SQLAlchemy 2 (async) tables, engines, the resource repository, migrations."""
