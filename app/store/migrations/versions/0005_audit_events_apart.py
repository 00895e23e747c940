"""AuditEvents move to tables of their own: `audit_events` and `audit_event_patients`.

Each live AuditEvent's current version leaves `resources` for `audit_events`, and its `patient`
index rows leave `search_index` for `audit_event_patients` (`app.store.audit_log`). Superseded
versions and deleted AuditEvents, which the generic API allowed until now, stay where they are:
reads of those ids fall back to them. Downgrade puts the events back as generic resources.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("last_updated_us", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
    )
    op.create_index("ix_audit_events_updated", "audit_events", ["last_updated_us", "id"])
    op.create_table(
        "audit_event_patients",
        sa.Column("patient_id", sa.String(1024), primary_key=True),
        sa.Column("event_id", sa.String(64), primary_key=True),
        sqlite_with_rowid=False,
    )
    op.execute(
        "INSERT INTO audit_events (id, version_id, last_updated_us, body) "
        "SELECT id, version_id, last_updated_us, body FROM resources "
        "WHERE resource_type = 'AuditEvent' AND NOT deleted"
    )
    op.execute(
        "INSERT INTO audit_event_patients (patient_id, event_id) "
        "SELECT DISTINCT search_index.value, search_index.resource_id FROM search_index "
        "JOIN resources ON resources.resource_type = search_index.resource_type "
        "AND resources.id = search_index.resource_id "
        "WHERE search_index.param = 'patient' AND resources.resource_type = 'AuditEvent' "
        "AND NOT resources.deleted"
    )
    op.execute(
        "DELETE FROM search_index WHERE resource_type = 'AuditEvent' "
        "AND resource_id IN (SELECT id FROM audit_events)"
    )
    op.execute("DELETE FROM resources WHERE resource_type = 'AuditEvent' AND NOT deleted")


def downgrade() -> None:
    op.execute(
        "INSERT INTO resources (resource_type, id, version_id, last_updated_us, deleted, body) "
        "SELECT 'AuditEvent', id, version_id, last_updated_us, FALSE, body FROM audit_events"
    )
    op.execute(
        "INSERT INTO search_index (resource_type, resource_id, param, system, value) "
        "SELECT 'AuditEvent', event_id, 'patient', 'Patient', patient_id "
        "FROM audit_event_patients"
    )
    op.drop_table("audit_event_patients")
    op.drop_index("ix_audit_events_updated", table_name="audit_events")
    op.drop_table("audit_events")
