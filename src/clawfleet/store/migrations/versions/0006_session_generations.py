"""Users carry a session generation, bumped when they are disabled.

Access tokens are signed, not stored, so revoking refresh tokens alone left a disabled user's
access tokens good again once the user was enabled. Each access token now names the generation
it was issued in and is refused once the user's generation has moved on. Access tokens issued
before this migration name none and are refused; their refresh tokens still work.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("session_generation", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("session_generation")
