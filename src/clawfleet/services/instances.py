"""Instance records: what controllers launched, and what users may ask of them.

Controllers act on the world and report here; every phase change passes
``domain.lifecycle.check_instance``. Users can only ask: restart (in place) or stop (the agent
controller replaces a stopped instance while the agent wants more replicas).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from clawfleet.core.clock import Clock
from clawfleet.core.errors import NotFound
from clawfleet.domain.kinds import AGENT
from clawfleet.domain.lifecycle import InstancePhase, StopRequest, check_instance
from clawfleet.domain.resources import ResourceRecord
from clawfleet.services.audit import AuditLog
from clawfleet.services.context import RequestContext
from clawfleet.services.policy import Verb, authorize, list_scope_for
from clawfleet.services.scoping import resolve_key
from clawfleet.services.task_views import page, view_instance
from clawfleet.services.views import format_time
from clawfleet.store.db import Database
from clawfleet.store.notify import Notifier
from clawfleet.store.repositories.events import ResourceEventRepository
from clawfleet.store.repositories.instances import InstanceRepository


class InstanceLogs(Protocol):
    """Reads an instance's output through its runtime (wired by the composition root)."""

    def __call__(
        self, runtime: str, handle: dict[str, Any], *, follow: bool, tail: int | None
    ) -> AsyncIterator[str]: ...


@dataclass(frozen=True)
class InstancePage:
    items: list[dict[str, Any]]
    next_cursor: str | None


class InstanceService:
    def __init__(self, db: Database, clock: Clock, notifier: Notifier) -> None:
        self.db = db
        self.clock = clock
        self.notifier = notifier
        self.audit = AuditLog(db, clock)

    # -- users -----------------------------------------------------------------------------

    async def find(
        self,
        ctx: RequestContext,
        *,
        agent: str | None = None,
        all_tenants: bool = False,
        all_projects: bool = False,
        include_stopped: bool = False,
        cursor: str | None = None,
        limit: int = 500,
    ) -> InstancePage:
        tenant, project, scopes = list_scope_for(
            ctx.principal, "Instance", ctx.default_tenant, ctx.default_project,
            all_tenants=all_tenants, all_projects=all_projects,
        )  # fmt: skip
        async with self.db.read() as conn:
            rows = await InstanceRepository(conn).find(
                tenant=tenant,
                project=project,
                agent=agent,
                scopes=scopes,
                include_stopped=include_stopped,
                after=cursor,
                limit=limit + 1,
            )
        return InstancePage(*page(rows, limit, view_instance, lambda row: str(row["name"])))

    async def row(self, ctx: RequestContext, name: str, verb: Verb = Verb.GET) -> dict[str, Any]:
        key = resolve_key(ctx, AGENT, name)
        what = f"instance {name!r} in tenant {key.tenant!r}, project {key.project!r}"
        if verb is Verb.GET:
            authorize(ctx.principal, verb, "Instance", key.tenant, key.project, what=what)
        else:
            await self.audit.guard(ctx, verb, "Instance", key.tenant, key.project, name, what=what)
        async with self.db.read() as conn:
            row = await InstanceRepository(conn).get_by_name(key.tenant, key.project, name)
        if row is None:
            raise NotFound(
                f"instance {name!r} not found in tenant {key.tenant!r}, project {key.project!r}; "
                "list them with `clawfleet get instances`"
            )
        return row

    async def get(self, ctx: RequestContext, name: str) -> dict[str, Any]:
        return view_instance(await self.row(ctx, name))

    async def request(self, ctx: RequestContext, name: str, what: StopRequest) -> dict[str, Any]:
        row = await self.row(ctx, name, Verb.UPDATE)
        now = self.clock.now()
        async with self.db.write() as conn:
            await InstanceRepository(conn).update(
                row["id"], {"stop_requested": what.value, "updated_at": now}
            )
            reason = "RestartRequested" if what is StopRequest.RESTART else "StopRequested"
            await self._event(conn, row, reason, f"by {ctx.principal.name}", now)
            verb = "restart" if what is StopRequest.RESTART else "stop"
            await self.audit.record(
                conn, ctx, verb, "Instance", row["tenant"], row["project"], name
            )
        row.update(stop_requested=what)
        await self.notifier.notify("reconcile", f"instance:{row['id']}")
        return view_instance(row)

    # -- controllers -----------------------------------------------------------------------

    async def all(self) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            return await InstanceRepository(conn).find(include_stopped=False)

    async def create(self, agent: ResourceRecord, runtime: str) -> dict[str, Any]:
        now = self.clock.now()
        row = {
            "id": str(uuid.uuid4()),
            "name": f"{agent.key.name[:56]}-{secrets.token_hex(3)[:5]}",
            "tenant": agent.key.tenant,
            "project": agent.key.project,
            "agent": agent.key.name,
            "agent_uid": agent.uid,
            "agent_generation": agent.generation,
            "runtime": runtime,
            "phase": InstancePhase.PENDING.value,
            "liveness": "starting",
            "handle": None,
            "token_id": None,
            "restarts": 0,
            "consecutive_failures": 0,
            "backoff_until": None,
            "last_error": None,
            "stop_requested": StopRequest.NONE.value,
            "heartbeat_at": None,
            "started_at": None,
            "stopped_at": None,
            "created_at": now,
            "updated_at": now,
        }
        async with self.db.write() as conn:
            await InstanceRepository(conn).insert(row)
        return row

    async def transition(
        self,
        row: dict[str, Any],
        phase: InstancePhase,
        *,
        reason: str | None = None,
        message: str = "",
        warning: bool = False,
        **values: Any,
    ) -> dict[str, Any]:
        """Move an instance to ``phase`` (checked) with extra column values, and maybe an event."""
        check_instance(InstancePhase(row["phase"]), phase)
        now = self.clock.now()
        values.update(phase=phase.value, updated_at=now)
        async with self.db.write() as conn:
            await InstanceRepository(conn).update(row["id"], values)
            if reason:
                await self._event(conn, row, reason, message, now, warning=warning)
        row.update(values)
        return row

    async def agent_event(
        self, agent: ResourceRecord, reason: str, message: str, *, warning: bool = False
    ) -> None:
        async with self.db.write() as conn:
            await ResourceEventRepository(conn).add(
                tenant=agent.key.tenant,
                project=agent.key.project,
                kind="Agent",
                name=agent.key.name,
                reason=reason,
                message=message,
                now=self.clock.now(),
                warning=warning,
            )

    async def _event(
        self,
        conn: Any,
        row: dict[str, Any],
        reason: str,
        message: str,
        now: datetime,
        *,
        warning: bool = False,
    ) -> None:
        await ResourceEventRepository(conn).add(
            tenant=row["tenant"],
            project=row["project"],
            kind="Instance",
            name=row["name"],
            reason=reason,
            message=message,
            now=now,
            warning=warning,
        )

    async def events(self, ctx: RequestContext, kind: str, name: str) -> list[dict[str, Any]]:
        key = resolve_key(ctx, AGENT, name)
        authorize(
            ctx.principal, Verb.GET, kind, key.tenant, key.project, what=f"{kind.lower()} {name!r}"
        )
        async with self.db.read() as conn:
            rows = await ResourceEventRepository(conn).find(
                kind=kind, tenant=key.tenant, project=key.project, name=name
            )
        return [
            {"type": r["type"], "reason": r["reason"], "message": r["message"],
             "time": format_time(r["created_at"])}
            for r in rows
        ]  # fmt: skip
