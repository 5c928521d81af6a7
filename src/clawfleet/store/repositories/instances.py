"""Instance rows: one per replica of an Agent, read back as ``domain.instances.Instance``.

The phase column changes only through ``move_instance``: it checks the move against the lifecycle
rules from the phase the caller read, and writes with a compare-and-swap on that phase, so a move
decided on a stale read loses instead of overwriting what happened meanwhile.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from clawfleet.domain.instances import Instance, InstanceId
from clawfleet.domain.lifecycle import InstancePhase, StopRequest, check_instance
from clawfleet.store.paging import Page, keyset_page
from clawfleet.store.repositories.rows import scope_clause
from clawfleet.store.tables import instances

_FIELDS = tuple(field.name for field in dataclasses.fields(Instance))


def _instance(row: Any) -> Instance:
    values = dict(row._mapping)
    values["phase"] = InstancePhase(values["phase"])
    values["stop_requested"] = StopRequest(values["stop_requested"])
    return Instance(**{name: values[name] for name in _FIELDS})


def _columns(values: Mapping[str, Any]) -> dict[str, Any]:
    """Column values from record field values (enums become what the columns hold)."""
    if "phase" in values:
        raise ValueError("the phase of an instance changes only through move_instance")
    unknown = set(values) - set(_FIELDS)
    if unknown:
        raise ValueError(f"not instance columns: {sorted(unknown)}")
    return {k: v.value if isinstance(v, StopRequest) else v for k, v in values.items()}


def _select(
    *,
    tenant: str | None = None,
    project: str | None = None,
    agent_uid: str | None = None,
    agent: str | None = None,
    scopes: Sequence[tuple[str, str | None]] | None = None,
    include_stopped: bool = True,
) -> Select[Any]:
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
    return query


class InstanceRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def insert(self, instance: Instance) -> None:
        values = dataclasses.asdict(instance)
        values.update(phase=instance.phase.value, stop_requested=instance.stop_requested.value)
        await self.conn.execute(insert(instances).values(**values))

    async def get(self, instance_id: str, *, for_update: bool = False) -> Instance | None:
        """The instance; ``for_update`` locks its row until the transaction ends (PostgreSQL)."""
        query = select(instances).where(instances.c.id == instance_id)
        if for_update:
            query = query.with_for_update()
        row = (await self.conn.execute(query)).first()
        return _instance(row) if row is not None else None

    async def get_by_name(self, tenant: str, project: str, name: str) -> Instance | None:
        c = instances.c
        query = select(instances).where(c.tenant == tenant, c.project == project, c.name == name)
        row = (await self.conn.execute(query)).first()
        return _instance(row) if row is not None else None

    async def find(
        self, *, agent_uid: str | None = None, include_stopped: bool = True
    ) -> list[Instance]:
        """Every instance (of one agent), in no particular order; for controllers."""
        query = _select(agent_uid=agent_uid, include_stopped=include_stopped)
        return [_instance(row) for row in (await self.conn.execute(query)).all()]

    async def page(
        self,
        *,
        tenant: str | None = None,
        project: str | None = None,
        agent: str | None = None,
        scopes: Sequence[tuple[str, str | None]] | None = None,
        include_stopped: bool = True,
        cursor: str | None = None,
        limit: int = 500,
    ) -> Page[Instance]:
        """One page of instances in (tenant, project, name) order, after ``cursor``."""
        query = _select(
            tenant=tenant, project=project, agent=agent, scopes=scopes,
            include_stopped=include_stopped,
        )  # fmt: skip
        c = instances.c
        rows, next_cursor = await keyset_page(
            self.conn, query, (c.tenant, c.project, c.name), cursor, limit
        )
        return Page([_instance(row) for row in rows], next_cursor)

    async def ids(self) -> set[InstanceId]:
        """The ids of every instance the store knows, stopped ones included."""
        rows = (await self.conn.execute(select(instances.c.id))).all()
        return {InstanceId(row.id) for row in rows}

    async def stopped_before(self, cutoff: datetime, *, limit: int = 100) -> list[Instance]:
        """Instances that have been Stopped since before ``cutoff``, the oldest first."""
        c = instances.c
        query = (
            select(instances)
            .where(
                c.phase == InstancePhase.STOPPED.value,
                or_(c.stopped_at < cutoff, c.stopped_at.is_(None)),
            )
            .order_by(c.stopped_at)
            .limit(limit)
        )
        return [_instance(row) for row in (await self.conn.execute(query)).all()]

    async def delete(self, instance_id: InstanceId) -> None:
        await self.conn.execute(delete(instances).where(instances.c.id == instance_id))

    async def move_instance(
        self,
        instance_id: InstanceId,
        from_phase: InstancePhase,
        to_phase: InstancePhase,
        values: Mapping[str, Any],
    ) -> bool:
        """Move the instance from ``from_phase`` (as the caller read it) to ``to_phase`` and
        write ``values`` with it. InvalidTransition if the rules forbid the move; False, and
        nothing written, if the stored phase is no longer ``from_phase`` (a lost race)."""
        check_instance(from_phase, to_phase)
        c = instances.c
        result = await self.conn.execute(
            update(instances)
            .where(c.id == instance_id, c.phase == from_phase.value)
            .values(phase=to_phase.value, **_columns(values))
        )
        return bool(result.rowcount == 1)

    async def update(self, instance_id: InstanceId, values: Mapping[str, Any]) -> None:
        """Write columns other than the phase (heartbeats, counters, requests)."""
        await self.conn.execute(
            update(instances).where(instances.c.id == instance_id).values(**_columns(values))
        )
