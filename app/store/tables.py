"""SQLAlchemy table definitions (Core). Wire models are never rows: see `repository`.

`resources` holds the current version of each resource, `resource_versions` every superseded
version (vread and history read both: migration 0004), `search_index` one row per indexed value
of a search parameter, and `used_assertion_ids` the client-assertion `jti`s seen by the token
endpoint (replay defence). AuditEvents live apart, in `audit_events` and `audit_event_patients`
(`app.store.audit_log`, migration 0005).
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
    UniqueConstraint,
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

# AuditEvents (immutable: never updated or deleted) in a table of their own, one row per event,
# and the patients each names (the registry's one AuditEvent search parameter, `patient`): four
# B-trees per event where `resources` and `search_index` took six, for the busiest writer of
# all (every CDS Hooks call is audited). Rows of 8 KB overflow a WITHOUT ROWID table's pages,
# so the events keep a rowid; the patient keys are small and clustered by patient.
audit_events = Table(
    "audit_events",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("version_id", Integer, nullable=False),
    Column("last_updated_us", BigInteger, nullable=False),
    Column("body", Text, nullable=False),
    Index("ix_audit_events_updated", "last_updated_us", "id"),
)

audit_event_patients = Table(
    "audit_event_patients",
    metadata,
    Column("patient_id", String(1024), primary_key=True),
    Column("event_id", String(64), primary_key=True),
    sqlite_with_rowid=False,
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

# --- PAS and utilization management (migration 0003) -------------------------------------------
# One row per accepted PAS $submit: the request Bundle as received, the stored Claim and
# ClaimResponse ids, and the dedupe key (submitter, Bundle.identifier, content hash) that makes a
# resubmission of the same request return the stored answer (PAS spec §Missing Response).
pas_requests = Table(
    "pas_requests",
    metadata,
    Column("request_id", String(64), primary_key=True),
    Column("submitter", String(255), nullable=False),
    Column("bundle_key", String(512), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("pas_version", String(16), nullable=False),
    Column("claim_id", String(64), nullable=False),
    Column("claim_response_id", String(64), nullable=False),
    Column("case_id", String(64), nullable=False),
    Column("received_us", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("related_request_id", String(64), nullable=True),
    Column("superseded_by", String(64), nullable=True),
    Column("bundle", Text, nullable=False),
    Column("extras", Text, nullable=False),
    UniqueConstraint("submitter", "bundle_key", "content_hash", name="uq_pas_requests_dedupe"),
    Index("ix_pas_requests_claim_response", "claim_response_id"),
)

# What $inquire and subscriptions match a request on: member ids, provider identifiers (NPI,
# TIN, payer ids, ISA06 sender), claim identifiers, item trace and authorization numbers.
pas_request_keys = Table(
    "pas_request_keys",
    metadata,
    Column("request_id", String(64), primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("value", String(255), primary_key=True),
    Index("ix_pas_request_keys_lookup", "kind", "value"),
)

# One review case per request: its deadline (72 h expedited, 7 days standard), status and the
# rule evaluation trace; reviewer decisions are recorded here and on a new ClaimResponse version.
review_cases = Table(
    "review_cases",
    metadata,
    Column("case_id", String(64), primary_key=True),
    Column("request_id", String(64), nullable=False, unique=True),
    Column("claim_id", String(64), nullable=False),
    Column("claim_response_id", String(64), nullable=False),
    Column("status", String(32), nullable=False),
    Column("priority", String(16), nullable=False),
    Column("received_us", BigInteger, nullable=False),
    Column("due_us", BigInteger, nullable=False),
    Column("decided_us", BigInteger, nullable=True),
    Column("decided_by", String(255), nullable=True),
    Column("decision", Text, nullable=True),
    Column("trace", Text, nullable=False),
    Index("ix_review_cases_status_due", "status", "due_us"),
    Index("ix_review_cases_claim", "claim_id"),
)

# PAS subscriptions (R5 Backport rest-hook): the parsed channel and filters used to deliver, the
# owning client (only the sending system sees its PAs, PAS spec-59) and the event counter.
pas_subscriptions = Table(
    "pas_subscriptions",
    metadata,
    Column("subscription_id", String(64), primary_key=True),
    Column("owner", String(255), nullable=False),
    Column("status", String(16), nullable=False),
    Column("endpoint", String(2048), nullable=False),
    Column("headers", Text, nullable=False),
    Column("payload_type", String(64), nullable=False),
    Column("content", String(16), nullable=False),
    Column("org_filters", Text, nullable=False),
    Column("heartbeat_seconds", Integer, nullable=True),
    Column("events_count", BigInteger, nullable=False),
    Column("last_sent_us", BigInteger, nullable=True),
    Column("created_us", BigInteger, nullable=False),
    Column("pas_version", String(16), nullable=False),
)

# The transactional outbox: every notification is written in the transaction that causes it and
# delivered by the outbox worker at least once (leases, retries with backoff, order kept per
# subscription), so a crash or restart loses nothing.
pas_outbox = Table(
    "pas_outbox",
    metadata,
    Column(
        "outbox_id",
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    Column("kind", String(32), nullable=False),
    Column("subscription_id", String(64), nullable=False),
    Column("payload", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_us", BigInteger, nullable=False),
    Column("locked_until_us", BigInteger, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("delivered_us", BigInteger, nullable=True),
    Column("last_error", String(1024), nullable=True),
    Index("ix_pas_outbox_due", "status", "next_attempt_us"),
    Index("ix_pas_outbox_subscription", "subscription_id", "status", "outbox_id"),
)
