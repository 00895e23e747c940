"""SQLAlchemy table definitions (Core). Wire models are never rows: see `repository`.

`resources` holds the current version of each resource, `resource_versions` every version (for
vread and history), `search_index` one row per indexed value of a search parameter, and
`used_assertion_ids` the client-assertion `jti`s seen by the token endpoint (replay defence).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

resources = Table(
    "resources",
    metadata,
    Column("resource_type", String(64), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("version_id", Integer, nullable=False),
    Column("last_updated_us", BigInteger, nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("body", Text, nullable=True),
    Index("ix_resources_type_updated", "resource_type", "last_updated_us", "id"),
)

resource_versions = Table(
    "resource_versions",
    metadata,
    Column("resource_type", String(64), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("version_id", Integer, primary_key=True),
    Column("last_updated_us", BigInteger, nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("body", Text, nullable=True),
)

search_index = Table(
    "search_index",
    metadata,
    Column(
        "row_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("resource_type", String(64), nullable=False),
    Column("resource_id", String(64), nullable=False),
    Column("param", String(64), nullable=False),
    Column("system", String(512), nullable=True),
    Column("value", String(1024), nullable=False),
    Index("ix_search_lookup", "resource_type", "param", "value"),
    Index("ix_search_owner", "resource_type", "resource_id"),
)

used_assertion_ids = Table(
    "used_assertion_ids",
    metadata,
    Column("client_id", String(255), primary_key=True),
    Column("jti", String(255), primary_key=True),
    Column("expires_at", BigInteger, nullable=False),
    Index("ix_used_assertion_expiry", "expires_at"),
)

# One CRD coverage assertion per (hook call, coverage): every order of the call answered for that
# coverage shares its `coverage-assertion-id` (CRD resp-32). DTR's `context` and PAS adjudication
# find it again by id; `fingerprint` lets a repeated hook for unchanged orders reuse it (resp-36).
coverage_assertions = Table(
    "coverage_assertions",
    metadata,
    Column("assertion_id", String(64), primary_key=True),
    Column("created_us", BigInteger, nullable=False),
    Column("expires_us", BigInteger, nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("patient_id", String(64), nullable=True),
    Column("member_coverage_id", String(64), nullable=True),
    Column("client_coverage_ref", String(255), nullable=True),
    Column("hook", String(64), nullable=False),
    Column("caller", String(255), nullable=True),
    Index("ix_coverage_assertions_fingerprint", "fingerprint", "expires_us"),
    Index("ix_coverage_assertions_patient", "patient_id", "created_us"),
)

coverage_decisions = Table(
    "coverage_decisions",
    metadata,
    Column("assertion_id", String(64), primary_key=True),
    Column("order_ref", String(255), primary_key=True),
    Column("topic_id", String(128), nullable=True),
    Column("decision", Text, nullable=False),
    Column("inputs", Text, nullable=False),
    Index("ix_coverage_decisions_topic", "topic_id"),
)
