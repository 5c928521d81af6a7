"""The database handle: engine set-up per dialect and the two kinds of transaction.

SQLite has one writer at a time. A deferred transaction that reads and then writes can fail with
SQLITE_BUSY when another writer got in between, so write transactions start with
``BEGIN IMMEDIATE`` and are serialized in-process with an asyncio lock (cheaper than spinning on
the busy timeout). Transactions run inline on the event loop (``store/inline.py``), so a write
never holds the database while other requests run. PostgreSQL needs none of this: asyncpg, row
locks and compare-and-swap updates. Migrations use an async engine on both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
from collections.abc import AsyncIterator
from typing import Any, cast

from sqlalchemy import create_engine, event, make_url
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from clawfleet.core.errors import TemporaryError
from clawfleet.store.inline import InlineConnection

log = logging.getLogger(__name__)

_WRITE = "clawfleet_write"


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control away from the driver so BEGIN is ours to emit.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in (
        "PRAGMA journal_mode=WAL",
        "PRAGMA synchronous=NORMAL",
        "PRAGMA foreign_keys=ON",
        "PRAGMA busy_timeout=10000",
    ):
        cursor.execute(pragma)
    cursor.close()


def _private_sqlite_files(url: str) -> None:
    """Create the database file 0600 before SQLite opens it, and tighten an existing one and
    its WAL and shared-memory files to 0600: SQLite gives the files it creates the mode of the
    database file, and the database holds prompts, results and the audit log."""
    path = make_url(url).database
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    changed = []
    for name in (path, f"{path}-wal", f"{path}-shm", f"{path}-journal"):
        with contextlib.suppress(FileNotFoundError):
            mode = stat.S_IMODE(os.stat(name).st_mode)
            if mode & 0o077:
                os.chmod(name, mode & 0o700)
                changed.append(f"{name} {mode:04o} -> {mode & 0o700:04o}")
    if changed:
        log.warning("took group and other access away from %s", ", ".join(changed))


def _sqlite_on_begin(conn: Connection) -> None:
    write = conn.get_execution_options().get(_WRITE, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


class Database:
    """Owns the engine. ``read()`` and ``write()`` yield a connection inside a transaction."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.inline: Engine | None = None
        if self.is_sqlite:
            _private_sqlite_files(url)
            self.engine: AsyncEngine = create_async_engine(url, pool_size=pool_size)
            self.inline = create_engine(url.replace("+aiosqlite", "+pysqlite"), pool_size=pool_size)
            for engine in (self.engine.sync_engine, self.inline):
                event.listen(engine, "connect", _sqlite_on_connect)
                event.listen(engine, "begin", _sqlite_on_begin)
        else:
            self.engine = create_async_engine(
                url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
            )
        self._write_lock = asyncio.Lock() if self.is_sqlite else None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        if self.inline is not None:
            async with self._translate(), self._inline(write=False) as conn:
                yield conn
            return
        async with self._translate(), self.engine.connect() as conn, conn.begin():
            yield conn

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        if self.inline is not None:
            assert self._write_lock is not None
            async with self._translate(), self._write_lock, self._inline(write=True) as conn:
                yield conn
            return
        async with self._translate(), self.engine.connect() as conn:
            conn = await conn.execution_options(**{_WRITE: True})
            async with conn.begin():
                yield conn

    @contextlib.asynccontextmanager
    async def _inline(self, *, write: bool) -> AsyncIterator[AsyncConnection]:
        assert self.inline is not None
        with self.inline.connect() as sync_conn:
            if write:
                sync_conn = sync_conn.execution_options(**{_WRITE: True})
            with sync_conn.begin():
                # InlineConnection implements the subset of AsyncConnection the store uses.
                yield cast(AsyncConnection, InlineConnection(sync_conn))

    @contextlib.asynccontextmanager
    async def _translate(self) -> AsyncIterator[None]:
        try:
            yield
        except OperationalError as exc:
            if "locked" in str(exc.orig) or exc.connection_invalidated:
                raise TemporaryError("the database is busy; retry shortly", delay=0.5) from exc
            raise
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise TemporaryError("lost the database connection; retry", delay=0.5) from exc
            raise
        except OSError as exc:
            raise TemporaryError(f"cannot reach the database: {exc}", delay=1.0) from exc

    async def close(self) -> None:
        await self.engine.dispose()
        if self.inline is not None:
            self.inline.dispose()
