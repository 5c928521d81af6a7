"""Instance rows: one per replica of an Agent."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from clawfleet.domain.lifecycle import InstancePhase
from clawfleet.store.repositories.rows import as_dict, as_dicts, scope_clause
from clawfleet.store.tables import instances


class InstanceRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def insert(self, values: dict[str, Any]) -> None:
        await self.conn.execute(insert(instances).values(**values))

    async def get(self, instance_id: str, *, for_update: bool = False) -> dict[str, Any] | None:
        query = select(instances).where(instances.c.id == instance_id)
        if for_update:
            query = query.with_for_update()
        return as_dict((await self.conn.execute(query)).first())

    async def get_by_name(self, tenant: str, project: str, name: str) -> dict[str, Any] | None:
        c = instances.c
        query = select(instances).where(c.tenant == tenant, c.project == project, c.name == name)
        return as_dict((await self.conn.execute(query)).first())

    async def find(
        self,
        *,
        tenant: str | None = None,
        project: str | None = None,
        agent_uid: str | None = None,
        agent: str | None = None,
        scopes: Sequence[tuple[str, str | None]] | None = None,
        include_stopped: bool = True,
        after: str | None = None,
        limit: int = 10_000,
    ) -> list[dict[str, Any]]:
        c = instances.c
        query = select(instances)
        if tenant is not None:
            query = query.where(c.tenant == tenant)
        if scopes is not None:
            query = query.where(scope_clause(c.tenant, c.project, scopes))
        if project is not None:
            query = query.where(c.project == project)
        if agent_uid is not None:
            query = query.where(c.agent_uid == agent_uid)
        if agent is not None:
            query = query.where(c.agent == agent)
        if not include_stopped:
            query = query.where(c.phase != InstancePhase.STOPPED.value)
        if after is not None:
            query = query.where(c.name > after)
        query = query.order_by(c.tenant, c.project, c.name).limit(limit)
        return as_dicts((await self.conn.execute(query)).all())

    async def update(self, instance_id: str, values: dict[str, Any]) -> None:
        await self.conn.execute(
            update(instances).where(instances.c.id == instance_id).values(**values)
        )
