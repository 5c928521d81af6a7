"""Resources, labels, secret versions, API tokens and idempotency keys.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from clawfleet.store.types import JsonDoc, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "resources",
        sa.Column("uid", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("tenant", sa.String(63), nullable=False),
        sa.Column("project", sa.String(63), nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.Column("resource_version", sa.BigInteger(), nullable=False),
        sa.Column("labels", JsonDoc, nullable=False),
        sa.Column("annotations", JsonDoc, nullable=False),
        sa.Column("spec", JsonDoc, nullable=False),
        sa.Column("status", JsonDoc, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("uid", name="pk_resources"),
        sa.UniqueConstraint(
            "kind", "tenant", "project", "name", name="uq_resources_kind_tenant_project_name"
        ),
    )
    op.create_table(
        "resource_labels",
        sa.Column("uid", sa.String(36), nullable=False),
        sa.Column("key", sa.String(317), nullable=False),
        sa.Column("value", sa.String(63), nullable=False),
        sa.ForeignKeyConstraint(
            ["uid"], ["resources.uid"], name="fk_resource_labels_uid_resources", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("uid", "key", name="pk_resource_labels"),
    )
    op.create_index("ix_resource_labels_key_value", "resource_labels", ["key", "value"])
    op.create_table(
        "secret_versions",
        sa.Column("uid", sa.String(36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["uid"], ["resources.uid"], name="fk_secret_versions_uid_resources", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("uid", "version", name="pk_secret_versions"),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("principal", sa.String(128), nullable=False),
        sa.Column("role", sa.String(40), nullable=False),
        sa.Column("tenant", sa.String(63), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("principal", sa.String(128), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("principal", "key", name="pk_idempotency_keys"),
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_keys_created_at", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    op.drop_table("api_tokens")
    op.drop_table("secret_versions")
    op.drop_index("ix_resource_labels_key_value", table_name="resource_labels")
    op.drop_table("resource_labels")
    op.drop_table("resources")
