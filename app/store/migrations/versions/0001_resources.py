"""Versioned resources, their history, the search index and used client-assertion ids.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "resources",
        sa.Column("resource_type", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("last_updated_us", sa.BigInteger(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
    )
    op.create_index(
        "ix_resources_type_updated", "resources", ["resource_type", "last_updated_us", "id"]
    )
    op.create_table(
        "resource_versions",
        sa.Column("resource_type", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("version_id", sa.Integer(), primary_key=True),
        sa.Column("last_updated_us", sa.BigInteger(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
    )
    op.create_table(
        "search_index",
        sa.Column("row_id", _ROW_ID, primary_key=True, autoincrement=True),
        sa.Column("resource_type", sa.String(64), nullable=False),
        sa.Column("resource_id", sa.String(64), nullable=False),
        sa.Column("param", sa.String(64), nullable=False),
        sa.Column("system", sa.String(512), nullable=True),
        sa.Column("value", sa.String(1024), nullable=False),
    )
    op.create_index("ix_search_lookup", "search_index", ["resource_type", "param", "value"])
    op.create_index("ix_search_owner", "search_index", ["resource_type", "resource_id"])
    op.create_table(
        "used_assertion_ids",
        sa.Column("client_id", sa.String(255), primary_key=True),
        sa.Column("jti", sa.String(255), primary_key=True),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_used_assertion_expiry", "used_assertion_ids", ["expires_at"])


def downgrade() -> None:
    op.drop_table("used_assertion_ids")
    op.drop_table("search_index")
    op.drop_table("resource_versions")
    op.drop_table("resources")
