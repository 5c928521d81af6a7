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
