"""PAS requests and their lookup keys, review cases, PAS subscriptions and the outbox.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "pas_requests",
        sa.Column("request_id", sa.String(64), primary_key=True),
        sa.Column("submitter", sa.String(255), nullable=False),
        sa.Column("bundle_key", sa.String(512), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("pas_version", sa.String(16), nullable=False),
        sa.Column("claim_id", sa.String(64), nullable=False),
        sa.Column("claim_response_id", sa.String(64), nullable=False),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("received_us", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("related_request_id", sa.String(64), nullable=True),
        sa.Column("superseded_by", sa.String(64), nullable=True),
        sa.Column("bundle", sa.Text(), nullable=False),
        sa.Column("extras", sa.Text(), nullable=False),
        sa.UniqueConstraint(
            "submitter", "bundle_key", "content_hash", name="uq_pas_requests_dedupe"
        ),
    )
    op.create_index("ix_pas_requests_claim_response", "pas_requests", ["claim_response_id"])
    op.create_table(
        "pas_request_keys",
        sa.Column("request_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("value", sa.String(255), primary_key=True),
    )
    op.create_index("ix_pas_request_keys_lookup", "pas_request_keys", ["kind", "value"])
    op.create_table(
        "review_cases",
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("request_id", sa.String(64), nullable=False, unique=True),
        sa.Column("claim_id", sa.String(64), nullable=False),
        sa.Column("claim_response_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("priority", sa.String(16), nullable=False),
        sa.Column("received_us", sa.BigInteger(), nullable=False),
        sa.Column("due_us", sa.BigInteger(), nullable=False),
        sa.Column("decided_us", sa.BigInteger(), nullable=True),
        sa.Column("decided_by", sa.String(255), nullable=True),
        sa.Column("decision", sa.Text(), nullable=True),
        sa.Column("trace", sa.Text(), nullable=False),
    )
    op.create_index("ix_review_cases_status_due", "review_cases", ["status", "due_us"])
    op.create_index("ix_review_cases_claim", "review_cases", ["claim_id"])
    op.create_table(
        "pas_subscriptions",
        sa.Column("subscription_id", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("endpoint", sa.String(2048), nullable=False),
        sa.Column("headers", sa.Text(), nullable=False),
        sa.Column("payload_type", sa.String(64), nullable=False),
        sa.Column("content", sa.String(16), nullable=False),
        sa.Column("org_filters", sa.Text(), nullable=False),
        sa.Column("heartbeat_seconds", sa.Integer(), nullable=True),
        sa.Column("events_count", sa.BigInteger(), nullable=False),
        sa.Column("last_sent_us", sa.BigInteger(), nullable=True),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("pas_version", sa.String(16), nullable=False),
    )
    op.create_table(
        "pas_outbox",
        sa.Column("outbox_id", _ROW_ID, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subscription_id", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_us", sa.BigInteger(), nullable=False),
        sa.Column("locked_until_us", sa.BigInteger(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("delivered_us", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sa.String(1024), nullable=True),
    )
    op.create_index("ix_pas_outbox_due", "pas_outbox", ["status", "next_attempt_us"])
    op.create_index(
        "ix_pas_outbox_subscription", "pas_outbox", ["subscription_id", "status", "outbox_id"]
    )


def downgrade() -> None:
    op.drop_table("pas_outbox")
    op.drop_table("pas_subscriptions")
    op.drop_table("review_cases")
    op.drop_table("pas_request_keys")
    op.drop_table("pas_requests")
