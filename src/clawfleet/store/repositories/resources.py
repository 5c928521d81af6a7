"""Resource rows: get, list with label selectors and keyset cursors, compare-and-swap writes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, and_, delete, exists, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from clawfleet.domain.ids import Uid
from clawfleet.domain.resources import ResourceKey, ResourceRecord
from clawfleet.domain.selectors import Op, Requirement, Selector
from clawfleet.store.repositories.rows import scope_clause
from clawfleet.store.tables import resource_labels, resources

Cursor = tuple[str, str, str]  # (tenant, project, name) of the last item of the previous page


def _to_record(row: Any) -> ResourceRecord:
    return ResourceRecord(
        uid=Uid(row.uid),
        key=ResourceKey(row.kind, row.tenant, row.project, row.name),
        generation=row.generation,
        resource_version=row.resource_version,
        labels=dict(row.labels),
        annotations=dict(row.annotations),
        spec=dict(row.spec),
        status=dict(row.status),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _requirement_clause(req: Requirement) -> ColumnElement[bool]:
    label = resource_labels.c
    where = [label.uid == resources.c.uid, label.key == req.key]
    if req.op in (Op.EQ, Op.NE, Op.IN, Op.NOTIN):
        where.append(label.value.in_(req.values))
    found = exists().where(*where)
    if req.op in (Op.EQ, Op.IN, Op.EXISTS):
        return found
    return ~found


def _after(cursor: Cursor) -> ColumnElement[bool]:
    tenant, project, name = cursor
    c = resources.c
    return or_(
        c.tenant > tenant,
        and_(c.tenant == tenant, c.project > project),
        and_(c.tenant == tenant, c.project == project, c.name > name),
    )


class ResourceRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def get(self, key: ResourceKey, *, for_update: bool = False) -> ResourceRecord | None:
        c = resources.c
        query = select(resources).where(
            c.kind == key.kind, c.tenant == key.tenant, c.project == key.project, c.name == key.name
        )
        if for_update:
            query = query.with_for_update()
        row = (await self.conn.execute(query)).first()
        return _to_record(row) if row else None

    async def list(
        self,
        kind: str,
        *,
        tenant: str | None,
        project: str | None,
        selector: Selector,
        after: Cursor | None,
        limit: int,
        scopes: Sequence[tuple[str, str | None]] | None = None,
    ) -> list[ResourceRecord]:
        """Items in (tenant, project, name) order. ``None`` for tenant or project means any;
        ``scopes`` (tenant, project-or-any) limits the result to what a caller may see."""
        query = self._filtered(select(resources), kind, tenant, project, selector, scopes)
        if after is not None:
            query = query.where(_after(after))
        c = resources.c
        query = query.order_by(c.tenant, c.project, c.name).limit(limit)
        return [_to_record(row) for row in (await self.conn.execute(query)).all()]

    async def count_in_scope(self, *, tenant: str, project: str | None) -> dict[str, int]:
        """How many resources of each kind are inside a tenant (any project, projects included)
        or inside one project; kinds with none are left out."""
        c = resources.c
        query = select(c.kind, func.count()).where(c.tenant == tenant).group_by(c.kind)
        if project is not None:
            query = query.where(c.project == project)
        return {str(kind): int(count) for kind, count in (await self.conn.execute(query)).all()}

    @staticmethod
    def _filtered(
        query: Select[Any],
        kind: str,
        tenant: str | None,
        project: str | None,
        selector: Selector,
        scopes: Sequence[tuple[str, str | None]] | None,
    ) -> Select[Any]:
        c = resources.c
        query = query.where(c.kind == kind)
        if tenant is not None:
            query = query.where(c.tenant == tenant)
        if scopes is not None:
            # A Tenant is named by its own name, a Project by (tenant, its name).
            if kind == "Tenant":
                query = query.where(scope_clause(c.name, c.name, [(t, None) for t, _ in scopes]))
            elif kind == "Project":
                query = query.where(scope_clause(c.tenant, c.name, scopes))
            else:
                query = query.where(scope_clause(c.tenant, c.project, scopes))
        if project is not None:
            query = query.where(c.project == project)
        for req in selector.requirements:
            query = query.where(_requirement_clause(req))
        return query

    async def insert(self, record: ResourceRecord) -> None:
        await self.conn.execute(
            insert(resources).values(
                uid=record.uid,
                kind=record.key.kind,
                tenant=record.key.tenant,
                project=record.key.project,
                name=record.key.name,
                generation=record.generation,
                resource_version=record.resource_version,
                labels=record.labels,
                annotations=record.annotations,
                spec=record.spec,
                status=record.status,
                created_at=record.created_at,
                updated_at=record.updated_at,
            )
        )
        await self._write_labels(record.uid, record.labels)

    async def replace(self, record: ResourceRecord, *, expected_version: int) -> bool:
        """Write ``record`` if the stored row still has ``expected_version``; False if not."""
        c = resources.c
        result = await self.conn.execute(
            update(resources)
            .where(c.uid == record.uid, c.resource_version == expected_version)
            .values(
                generation=record.generation,
                resource_version=record.resource_version,
                labels=record.labels,
                annotations=record.annotations,
                spec=record.spec,
                status=record.status,
                updated_at=record.updated_at,
            )
        )
        if result.rowcount != 1:
            return False
        await self.conn.execute(delete(resource_labels).where(resource_labels.c.uid == record.uid))
        await self._write_labels(record.uid, record.labels)
        return True

    async def delete(self, uid: Uid, *, expected_version: int | None = None) -> bool:
        c = resources.c
        query = delete(resources).where(c.uid == uid)
        if expected_version is not None:
            query = query.where(c.resource_version == expected_version)
        # Children first: SQLite only cascades when foreign keys are on, so do not rely on it.
        await self.conn.execute(delete(resource_labels).where(resource_labels.c.uid == uid))
        result = await self.conn.execute(query)
        return result.rowcount == 1

    async def _write_labels(self, uid: Uid, labels: dict[str, str]) -> None:
        if labels:
            await self.conn.execute(
                insert(resource_labels),
                [{"uid": uid, "key": k, "value": v} for k, v in labels.items()],
            )
