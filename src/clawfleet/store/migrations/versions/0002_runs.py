"""Instances, tasks, the dispatch queue, runs, run events and commands, resource events, leases.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 11:52:09.012046
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import clawfleet.store.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dispatch_queue",
        sa.Column("agent_uid", sa.String(length=36), nullable=False),
        sa.Column("task_seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("not_before", clawfleet.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("agent_uid", "task_seq", name=op.f("pk_dispatch_queue")),
    )
    with op.batch_alter_table("dispatch_queue", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dispatch_queue_agent_uid_priority_task_seq"),
            ["agent_uid", "priority", "task_seq"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_dispatch_queue_task_seq"), ["task_seq"], unique=False)

    op.create_table(
        "instances",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("tenant", sa.String(length=63), nullable=False),
        sa.Column("project", sa.String(length=63), nullable=False),
        sa.Column("agent", sa.String(length=63), nullable=False),
        sa.Column("agent_uid", sa.String(length=36), nullable=False),
        sa.Column("agent_generation", sa.BigInteger(), nullable=False),
        sa.Column("runtime", sa.String(length=32), nullable=False),
        sa.Column("phase", sa.String(length=20), nullable=False),
        sa.Column("liveness", sa.String(length=20), nullable=False),
        sa.Column(
            "handle",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("token_id", sa.String(length=36), nullable=True),
        sa.Column("restarts", sa.Integer(), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("backoff_until", clawfleet.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("stop_requested", sa.Integer(), nullable=False),
        sa.Column("heartbeat_at", clawfleet.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("started_at", clawfleet.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("stopped_at", clawfleet.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", clawfleet.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", clawfleet.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instances")),
        sa.UniqueConstraint(
            "tenant", "project", "name", name=op.f("uq_instances_tenant_project_name")
        ),
    )
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_instances_agent_uid_phase"), ["agent_uid", "phase"], unique=False
        )

    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=False),
        sa.Column("expires_at", clawfleet.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )
    op.create_table(
        "resource_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("tenant", sa.String(length=63), nullable=False),
        sa.Column("project", sa.String(length=63), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", clawfleet.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resource_events")),
    )
    with op.batch_alter_table("resource_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_resource_events_kind_tenant_project_name"),
            ["kind", "tenant", "project", "name"],
            unique=False,
        )

    op.create_table(
        "run_commands",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("instance_id", sa.String(length=36), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", clawfleet.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("acked_at", clawfleet.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_commands")),
    )
    with op.batch_alter_table("run_commands", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_run_commands_instance_id_acked_at"),
            ["instance_id", "acked_at"],
            unique=False,
        )

    op.create_table(
        "run_events",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("runner_seq", sa.BigInteger(), nullable=True),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", clawfleet.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "seq", name=op.f("pk_run_events")),
        sa.UniqueConstraint("run_id", "runner_seq", name=op.f("uq_run_events_run_id_runner_seq")),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("task_id", sa.String(length=32), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("tenant", sa.String(length=63), nullable=False),
        sa.Column("project", sa.String(length=63), nullable=False),
        sa.Column("agent", sa.String(length=63), nullable=False),
        sa.Column("instance_id", sa.String(length=36), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("failure_kind", sa.String(length=32), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "result",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "usage",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("queued_at", clawfleet.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", clawfleet.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", clawfleet.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "lease_expires_at", clawfleet.store.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("deadline_at", clawfleet.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
    )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_runs_instance_id_state"), ["instance_id", "state"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_runs_state_lease_expires_at"),
            ["state", "lease_expires_at"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_runs_task_id"), ["task_id"], unique=False)

    op.create_table(
        "tasks",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("tenant", sa.String(length=63), nullable=False),
        sa.Column("project", sa.String(length=63), nullable=False),
        sa.Column("agent", sa.String(length=63), nullable=True),
        sa.Column("selector", sa.Text(), nullable=True),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "labels",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("timeout_seconds", sa.Integer(), nullable=True),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("backoff_seconds", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("cancel_requested", sa.Integer(), nullable=False),
        sa.Column("current_run", sa.String(length=32), nullable=True),
        sa.Column(
            "result",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("failure_kind", sa.String(length=32), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", clawfleet.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", clawfleet.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", clawfleet.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_tasks")),
        sa.UniqueConstraint("id", name=op.f("uq_tasks_id")),
        sa.UniqueConstraint(
            "tenant",
            "project",
            "idempotency_key",
            name=op.f("uq_tasks_tenant_project_idempotency_key"),
        ),
    )
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_tasks_tenant_project_state"),
            ["tenant", "project", "state"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tasks_tenant_project_state"))

    op.drop_table("tasks")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_runs_task_id"))
        batch_op.drop_index(batch_op.f("ix_runs_state_lease_expires_at"))
        batch_op.drop_index(batch_op.f("ix_runs_instance_id_state"))

    op.drop_table("runs")
    op.drop_table("run_events")
    with op.batch_alter_table("run_commands", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_run_commands_instance_id_acked_at"))

    op.drop_table("run_commands")
    with op.batch_alter_table("resource_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_resource_events_kind_tenant_project_name"))

    op.drop_table("resource_events")
    op.drop_table("leases")
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_instances_agent_uid_phase"))

    op.drop_table("instances")
    with op.batch_alter_table("dispatch_queue", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dispatch_queue_task_seq"))
        batch_op.drop_index(batch_op.f("ix_dispatch_queue_agent_uid_priority_task_seq"))

    op.drop_table("dispatch_queue")
