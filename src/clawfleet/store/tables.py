"""The schema, as SQLAlchemy Core tables. Migrations in ``migrations/`` must match it
(``tests/store/test_migrations.py`` checks)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from clawfleet.store.types import JsonDoc, UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Every declarative resource lives here; unused scopes are '' so the unique key works everywhere.
resources = Table(
    "resources",
    metadata,
    Column("uid", String(36), primary_key=True),
    Column("kind", String(40), nullable=False),
    Column("tenant", String(63), nullable=False),
    Column("project", String(63), nullable=False),
    Column("name", String(63), nullable=False),
    Column("generation", BigInteger, nullable=False),
    Column("resource_version", BigInteger, nullable=False),
    Column("labels", JsonDoc, nullable=False),
    Column("annotations", JsonDoc, nullable=False),
    Column("spec", JsonDoc, nullable=False),
    Column("status", JsonDoc, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("kind", "tenant", "project", "name"),
)

# One row per label, so selectors are indexed SQL on both databases.
resource_labels = Table(
    "resource_labels",
    metadata,
    Column("uid", String(36), ForeignKey("resources.uid", ondelete="CASCADE"), primary_key=True),
    Column("key", String(317), primary_key=True),
    Column("value", String(63), nullable=False),
    Index(None, "key", "value"),
)

# Encrypted secret values, one row per version; the newest version is current.
secret_versions = Table(
    "secret_versions",
    metadata,
    Column("uid", String(36), ForeignKey("resources.uid", ondelete="CASCADE"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("ciphertext", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# Bearer tokens; only a SHA-256 of each token is kept.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("principal", String(128), nullable=False),
    Column("role", String(40), nullable=False),
    Column("tenant", String(63), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
)

# First answers to create requests that carried an Idempotency-Key.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("principal", String(128), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index(None, "created_at"),
)

_SERIAL = BigInteger().with_variant(Integer, "sqlite")  # autoincrement on both databases

# One replica of an Agent: a runner process (or container, or Pod) and its agent program.
instances = Table(
    "instances",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(63), nullable=False),
    Column("tenant", String(63), nullable=False),
    Column("project", String(63), nullable=False),
    Column("agent", String(63), nullable=False),
    Column("agent_uid", String(36), nullable=False),
    Column("agent_generation", BigInteger, nullable=False),
    # sha256 of what the instance runs (domain.revisions); '' for instances from before 0004.
    Column("revision", String(64), nullable=False, server_default=""),
    Column("runtime", String(32), nullable=False),
    Column("phase", String(20), nullable=False),
    Column("liveness", String(20), nullable=False),
    Column("handle", JsonDoc, nullable=True),
    Column("token_id", String(36), nullable=True),
    Column("restarts", Integer, nullable=False),
    Column("consecutive_failures", Integer, nullable=False),
    Column("backoff_until", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("stop_requested", Integer, nullable=False),  # domain.lifecycle.StopRequest
    Column("heartbeat_at", UTCDateTime, nullable=True),
    Column("started_at", UTCDateTime, nullable=True),
    Column("stopped_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("tenant", "project", "name"),
    Index(None, "agent_uid", "phase"),
)

# Units of work. `seq` gives FIFO order within a priority; `id` is assigned by the server and
# unique everywhere (runs refer to it); `name` is unique per (tenant, project), like a resource's.
tasks = Table(
    "tasks",
    metadata,
    Column("seq", _SERIAL, primary_key=True, autoincrement=True),
    Column("id", String(32), nullable=False, unique=True),
    Column("name", String(63), nullable=False),
    Column("tenant", String(63), nullable=False),
    Column("project", String(63), nullable=False),
    Column("agent", String(63), nullable=True),
    Column("selector", Text, nullable=True),
    Column("prompt", Text, nullable=False),
    Column("data", JsonDoc, nullable=False),
    Column("labels", JsonDoc, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("idempotency_key", String(255), nullable=True),
    Column("timeout_seconds", Integer, nullable=True),
    Column("max_attempts", Integer, nullable=False),
    Column("backoff_seconds", Integer, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("cancel_requested", Integer, nullable=False),
    Column("current_run", String(32), nullable=True),
    Column("result", JsonDoc, nullable=True),
    Column("failure_kind", String(32), nullable=True),
    Column("error", Text, nullable=True),
    Column("created_by", String(128), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    UniqueConstraint("tenant", "project", "idempotency_key"),
    UniqueConstraint("tenant", "project", "name"),
    Index(None, "tenant", "project", "state"),
)

# What can be claimed, by which agent: one row per (task, candidate agent) while pending.
dispatch_queue = Table(
    "dispatch_queue",
    metadata,
    Column("agent_uid", String(36), primary_key=True),
    Column("task_seq", BigInteger, primary_key=True, autoincrement=False),
    Column("priority", Integer, nullable=False),
    Column("not_before", UTCDateTime, nullable=False),
    Index(None, "agent_uid", "priority", "task_seq"),
    Index(None, "task_seq"),
)

# One attempt of a task on one instance.
runs = Table(
    "runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("task_id", String(32), nullable=False),
    Column("task_name", String(63), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("tenant", String(63), nullable=False),
    Column("project", String(63), nullable=False),
    Column("agent", String(63), nullable=False),
    Column("instance_id", String(36), nullable=False),
    Column("state", String(16), nullable=False),
    Column("failure_kind", String(32), nullable=True),
    Column("error", Text, nullable=True),
    Column("result", JsonDoc, nullable=True),
    Column("usage", JsonDoc, nullable=True),
    Column("last_seq", BigInteger, nullable=False),
    Column("queued_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("lease_expires_at", UTCDateTime, nullable=False),
    Column("deadline_at", UTCDateTime, nullable=True),
    Index(None, "task_id"),
    Index(None, "instance_id", "state"),
    Index(None, "state", "lease_expires_at"),
)

# The ordered facts of a run. `runner_seq` makes a retried batch from the runner idempotent.
run_events = Table(
    "run_events",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("runner_seq", BigInteger, nullable=True),
    Column("type", String(32), nullable=False),
    Column("data", JsonDoc, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("run_id", "runner_seq"),
)

# Commands for a runner (cancel, steer); acknowledged by the runner.
run_commands = Table(
    "run_commands",
    metadata,
    Column("id", _SERIAL, primary_key=True, autoincrement=True),
    Column("instance_id", String(36), nullable=False),
    Column("run_id", String(32), nullable=False),
    Column("type", String(16), nullable=False),
    Column("payload", JsonDoc, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("acked_at", UTCDateTime, nullable=True),
    Index(None, "instance_id", "acked_at"),
)

# What happened to a resource (woke, slept, launched, crashed), for `describe`.
resource_events = Table(
    "resource_events",
    metadata,
    Column("id", _SERIAL, primary_key=True, autoincrement=True),
    Column("tenant", String(63), nullable=False),
    Column("project", String(63), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("name", String(63), nullable=False),
    Column("type", String(16), nullable=False),
    Column("reason", String(64), nullable=False),
    Column("message", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index(None, "kind", "tenant", "project", "name"),
)

# Leader leases: one holder per controller across control-plane replicas.
leases = Table(
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

# People who sign in with a password. What they may do comes from RoleBindings.
users = Table(
    "users",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(63), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("disabled", Integer, nullable=False),
    # Bumped on every disable; an access token of an earlier generation is refused for good.
    Column("session_generation", Integer, nullable=False, server_default="0"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# Non-human identities of a tenant; their API keys live in api_tokens.
service_accounts = Table(
    "service_accounts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant", String(63), nullable=False),
    Column("name", String(63), nullable=False),
    Column("description", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("tenant", "name"),
)

# Refresh tokens of user sessions (hashes only); each refresh replaces its token.
refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", String(36), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Index(None, "user_id"),
)

# Every mutation, allowed or denied, written in the mutation's own transaction.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", _SERIAL, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("principal", String(160), nullable=False),
    Column("tenant", String(63), nullable=False),
    Column("project", String(63), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("name", String(63), nullable=False),
    Column("verb", String(16), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("client", String(64), nullable=False),
    Column("request_id", String(32), nullable=False),
    Column("details", JsonDoc, nullable=False),
    Index(None, "tenant", "at"),
    Index(None, "principal", "at"),
    Index(None, "kind", "at"),
)
