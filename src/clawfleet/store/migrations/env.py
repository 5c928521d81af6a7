"""Alembic environment.

Migrations always run on a connection handed in by ``clawfleet.store.migrate``
(``config.attributes["connection"]``), so one code path serves SQLite and PostgreSQL.
"""

from __future__ import annotations

from alembic import context

from clawfleet.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `clawfleet db upgrade`, not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
