"""SQLite statements run inline on the event loop, through the stdlib driver.

An SQLite statement takes microseconds; sending each one to a thread (aiosqlite) costs far more
than the statement, and lets other requests run while a write transaction holds the database.
``InlineConnection`` offers the part of ``AsyncConnection`` the repositories use, on top of a
synchronous SQLAlchemy connection: its coroutines never suspend, so a whole transaction runs in
one step of the event loop. Only SQLite uses it; PostgreSQL keeps asyncpg.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy.engine import Connection, CursorResult


class InlineConnection:
    def __init__(self, conn: Connection) -> None:
        self.sync_connection = conn

    async def execute(self, statement: Any, parameters: Any = None) -> CursorResult[Any]:
        return self.sync_connection.execute(statement, parameters)

    @contextlib.asynccontextmanager
    async def begin_nested(self) -> AsyncIterator[None]:
        with self.sync_connection.begin_nested():
            yield
