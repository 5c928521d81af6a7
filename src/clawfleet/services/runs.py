"""Run reads: one run, listings, and a run's events after a cursor (what ``events`` and the
SSE stream serve).

A run the caller holds no role for is not found (``policy.sees``), with the very answer a run id
that exists nowhere gets, so run ids of other tenants reveal nothing.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from clawfleet.core.clock import Clock
from clawfleet.core.errors import NotFound
from clawfleet.domain.tasks import Run
from clawfleet.schemas.runs import EventOut, RunOut
from clawfleet.services.context import RequestContext
from clawfleet.services.policy import Verb, authorize, list_scope_for, sees
from clawfleet.store.db import Database
from clawfleet.store.paging import Page
from clawfleet.store.repositories.runs import RunRepository


async def find_run(conn: AsyncConnection, ctx: RequestContext, run_id: str) -> Run | None:
    """The run with this id, if the caller holds a role where it lives."""
    run = await RunRepository(conn).get(run_id)
    return run if run is not None and sees(ctx.principal, run.tenant, run.project) else None


def run_missing(run_id: str) -> NotFound:
    return NotFound(f"run {run_id!r} not found; list runs with `clawfleet get runs`")


class RunService:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def run(self, ctx: RequestContext, run_id: str) -> Run:
        async with self.db.read() as conn:
            run = await find_run(conn, ctx, run_id)
        if run is None:
            raise run_missing(run_id)
        authorize(ctx.principal, Verb.GET, "Run", run.tenant, run.project, what=f"run {run_id!r}")
        return run

    async def get(self, ctx: RequestContext, run_id: str) -> RunOut:
        return RunOut.of(await self.run(ctx, run_id))

    async def find(
        self,
        ctx: RequestContext,
        *,
        task: str | None = None,
        state: str | None = None,
        all_tenants: bool = False,
        all_projects: bool = False,
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page[RunOut]:
        tenant, project, scopes = list_scope_for(
            ctx.principal, "Run", ctx.default_tenant, ctx.default_project,
            all_tenants=all_tenants, all_projects=all_projects,
        )  # fmt: skip
        async with self.db.read() as conn:
            found = await RunRepository(conn).page(
                tenant=tenant, project=project, scopes=scopes, task_id=task, state=state,
                cursor=cursor, limit=limit,
            )  # fmt: skip
        return Page([RunOut.of(r) for r in found.items], found.next_cursor)

    async def events(
        self, ctx: RequestContext, run_id: str, *, after: int = 0, limit: int = 1000
    ) -> tuple[Run, list[EventOut]]:
        """The run (as of after the read) and its events with seq > ``after``, in order."""
        run = await self.run(ctx, run_id)
        async with self.db.read() as conn:
            rows = await RunRepository(conn).events(run_id, after=after, limit=limit)
            fresh = await RunRepository(conn).get(run_id)
        return fresh or run, [EventOut.of(r) for r in rows]
