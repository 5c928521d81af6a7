"""The Alembic tree builds exactly the schema in tables.py, and goes down and up again."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from clawfleet.store import migrate
from clawfleet.store.db import Database
from clawfleet.store.tables import metadata


async def test_migrations_match_the_tables(db: Database) -> None:
    def diff(connection: Any) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    async with db.engine.connect() as conn:
        assert await conn.run_sync(diff) == []
    assert await migrate.current_revision(db) == migrate.head_revision()


async def test_downgrade_to_empty_and_upgrade_again(db: Database) -> None:
    await migrate.downgrade(db, "base")

    def tables(connection: Any) -> set[str]:
        return set(inspect(connection).get_table_names()) - {"alembic_version"}

    async with db.engine.connect() as conn:
        assert await conn.run_sync(tables) == set()
    await migrate.upgrade(db)
    async with db.engine.connect() as conn:
        assert await conn.run_sync(tables) == set(metadata.tables)
