"""`resource_versions` keeps superseded versions only; the current version is in `resources`.

Until now every version, the current one included, was written to both tables, so each create
wrote the resource twice. Reads of a version now look in `resource_versions`, then at the
current row; this migration drops the copies of current versions (downgrade puts them back).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "DELETE FROM resource_versions WHERE EXISTS (SELECT 1 FROM resources r "
        "WHERE r.resource_type = resource_versions.resource_type "
        "AND r.id = resource_versions.id AND r.version_id = resource_versions.version_id)"
    )


def downgrade() -> None:
    op.execute(
        "INSERT INTO resource_versions (resource_type, id, version_id, last_updated_us, deleted, "
        "body) SELECT resource_type, id, version_id, last_updated_us, deleted, body FROM resources"
    )
