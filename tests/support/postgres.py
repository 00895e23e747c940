"""The test session's throwaway PostgreSQL cluster: `app.devtools.postgres`, re-exported.

The starter lives in `app/devtools/postgres.py` so that the benchmark harness
(`python -m bench --database postgresql`) starts its server the same way; the tests keep
importing it from here.
"""

from __future__ import annotations

from app.devtools.postgres import PostgresCluster, PostgresUnavailableError, free_port

__all__ = ["PostgresCluster", "PostgresUnavailableError", "free_port"]
