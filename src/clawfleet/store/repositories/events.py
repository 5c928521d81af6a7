"""Resource events: what happened to an agent or instance, shown by `describe`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from clawfleet.store.repositories.rows import as_dicts
from clawfleet.store.tables import resource_events


class ResourceEventRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def add(
        self,
        *,
        tenant: str,
        project: str,
        kind: str,
        name: str,
        reason: str,
        message: str,
        now: datetime,
        warning: bool = False,
    ) -> None:
        await self.conn.execute(
            insert(resource_events).values(
                tenant=tenant,
                project=project,
                kind=kind,
                name=name,
                type="Warning" if warning else "Normal",
                reason=reason,
                message=message,
                created_at=now,
            )
        )

    async def delete(self, *, kind: str, tenant: str, project: str, name: str) -> None:
        """Forget the events of one object (an instance whose row is pruned)."""
        c = resource_events.c
        await self.conn.execute(
            delete(resource_events).where(
                c.kind == kind, c.tenant == tenant, c.project == project, c.name == name
            )
        )

    async def find(
        self, *, kind: str, tenant: str, project: str, name: str, limit: int = 50
    ) -> list[dict[str, Any]]:
        c = resource_events.c
        query = (
            select(c.type, c.reason, c.message, c.created_at)
            .where(c.kind == kind, c.tenant == tenant, c.project == project, c.name == name)
            .order_by(c.id.desc())
            .limit(limit)
        )
        return list(reversed(as_dicts((await self.conn.execute(query)).all())))
