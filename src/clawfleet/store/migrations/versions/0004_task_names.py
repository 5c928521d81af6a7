"""Task names unique per (tenant, project) instead of across all tenants.

A task's server-assigned ``id`` stays unique everywhere (runs refer to it); the new ``name``
column holds the name a user gave (63 characters, like every name) or the id. Existing tasks
keep their id as their name; runs get their task's name for display.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("name", sa.String(length=63), nullable=True))
    op.execute("UPDATE tasks SET name = id")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.alter_column("name", existing_type=sa.String(length=63), nullable=False)
        batch_op.create_unique_constraint(
            batch_op.f("uq_tasks_tenant_project_name"), ["tenant", "project", "name"]
        )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("task_name", sa.String(length=63), nullable=True))
    op.execute("UPDATE runs SET task_name = task_id")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.alter_column("task_name", existing_type=sa.String(length=63), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("task_name")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_tasks_tenant_project_name"), type_="unique")
        batch_op.drop_column("name")
