"""Run Alembic migrations programmatically and report where a database stands."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from clawfleet.store.db import Database

_SCRIPTS = Path(__file__).parent / "migrations"


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None, "the migration tree has no head"
    return head


async def current_revision(db: Database) -> str | None:
    def _current(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with db.engine.connect() as conn:
        return await conn.run_sync(_current)


async def upgrade(db: Database, revision: str = "head") -> None:
    def _upgrade(connection: Connection) -> None:
        command.upgrade(_config(connection), revision)

    async with db.engine.begin() as conn:
        await conn.run_sync(_upgrade)


async def downgrade(db: Database, revision: str) -> None:
    def _downgrade(connection: Connection) -> None:
        command.downgrade(_config(connection), revision)

    async with db.engine.begin() as conn:
        await conn.run_sync(_downgrade)
