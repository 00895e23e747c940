"""CRD coverage assertions and the per-order decisions they hold.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "coverage_assertions",
        sa.Column("assertion_id", sa.String(64), primary_key=True),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("expires_us", sa.BigInteger(), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("patient_id", sa.String(64), nullable=True),
        sa.Column("member_coverage_id", sa.String(64), nullable=True),
        sa.Column("client_coverage_ref", sa.String(255), nullable=True),
        sa.Column("hook", sa.String(64), nullable=False),
        sa.Column("caller", sa.String(255), nullable=True),
    )
    op.create_index(
        "ix_coverage_assertions_fingerprint", "coverage_assertions", ["fingerprint", "expires_us"]
    )
    op.create_index(
        "ix_coverage_assertions_patient", "coverage_assertions", ["patient_id", "created_us"]
    )
    op.create_table(
        "coverage_decisions",
        sa.Column("assertion_id", sa.String(64), primary_key=True),
        sa.Column("order_ref", sa.String(255), primary_key=True),
        sa.Column("topic_id", sa.String(128), nullable=True),
        sa.Column("decision", sa.Text(), nullable=False),
        sa.Column("inputs", sa.Text(), nullable=False),
    )
    op.create_index("ix_coverage_decisions_topic", "coverage_decisions", ["topic_id"])


def downgrade() -> None:
    op.drop_table("coverage_decisions")
    op.drop_table("coverage_assertions")
