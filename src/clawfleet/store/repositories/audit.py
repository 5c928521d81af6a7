"""The audit log: appended in the mutation's own transaction, read newest first."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from clawfleet.store.repositories.rows import as_dicts, scope_clause
from clawfleet.store.tables import audit_log


class AuditRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def add(self, values: dict[str, Any]) -> None:
        await self.conn.execute(insert(audit_log).values(**values))

    async def find(
        self,
        *,
        scopes: Sequence[tuple[str, str | None]] | None,
        kind: str | None = None,
        principal: str | None = None,
        since: datetime | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        c = audit_log.c
        query = select(audit_log)
        if scopes is not None:
            query = query.where(scope_clause(c.tenant, c.project, scopes))
        if kind is not None:
            query = query.where(c.kind == kind)
        if principal is not None:
            query = query.where(c.principal == principal)
        if since is not None:
            query = query.where(c.at >= since)
        if before_id is not None:
            query = query.where(c.id < before_id)
        query = query.order_by(c.id.desc()).limit(limit)
        return as_dicts((await self.conn.execute(query)).all())
