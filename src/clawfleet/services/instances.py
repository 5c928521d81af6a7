"""Instance records: what controllers launched, and what users may ask of them.

Controllers act on the world and report here; every phase change is a repository move, checked
by ``domain.lifecycle`` against the stored phase (a lost race is reported, not overwritten).
Users can only ask: restart (in place) or stop (the agent controller replaces a stopped
instance while the agent wants more replicas).
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any, Protocol

from clawfleet.core.clock import Clock
from clawfleet.core.errors import NotFound
from clawfleet.domain.instances import Instance, InstanceId
from clawfleet.domain.kinds import AGENT
from clawfleet.domain.lifecycle import InstancePhase, StopRequest
from clawfleet.domain.resources import ResourceRecord
from clawfleet.services.audit import AuditLog
from clawfleet.services.context import RequestContext
from clawfleet.services.policy import Verb, authorize, list_scope_for
from clawfleet.services.scoping import resolve_key
from clawfleet.store.db import Database
from clawfleet.store.notify import Notifier
from clawfleet.store.paging import Page
from clawfleet.store.repositories.events import ResourceEventRepository
from clawfleet.store.repositories.instances import InstanceRepository

log = logging.getLogger(__name__)


class InstanceLogs(Protocol):
    """Reads an instance's output through its runtime (wired by the composition root)."""

    def __call__(
        self, runtime: str, handle: Mapping[str, Any], *, follow: bool, tail: int | None
    ) -> AsyncIterator[str]: ...


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
    ) -> Page[Instance]:
        tenant, project, scopes = list_scope_for(
            ctx.principal, "Instance", ctx.default_tenant, ctx.default_project,
            all_tenants=all_tenants, all_projects=all_projects,
        )  # fmt: skip
        async with self.db.read() as conn:
            found = await InstanceRepository(conn).page(
                tenant=tenant,
                project=project,
                agent=agent,
                scopes=scopes,
                include_stopped=include_stopped,
                cursor=cursor,
                limit=limit,
            )
        return found

    async def instance(self, ctx: RequestContext, name: str, verb: Verb = Verb.GET) -> Instance:
        key = resolve_key(ctx, AGENT, name)
        what = f"instance {name!r} in tenant {key.tenant!r}, project {key.project!r}"
        if verb is Verb.GET:
            authorize(ctx.principal, verb, "Instance", key.tenant, key.project, what=what)
        else:
            await self.audit.guard(ctx, verb, "Instance", key.tenant, key.project, name, what=what)
        async with self.db.read() as conn:
            found = await InstanceRepository(conn).get_by_name(key.tenant, key.project, name)
        if found is None:
            raise NotFound(
                f"instance {name!r} not found in tenant {key.tenant!r}, project {key.project!r}; "
                "list them with `clawfleet get instances`"
            )
        return found

    async def request(self, ctx: RequestContext, name: str, what: StopRequest) -> Instance:
        instance = await self.instance(ctx, name, Verb.UPDATE)
        now = self.clock.now()
        async with self.db.write() as conn:
            await InstanceRepository(conn).update(
                instance.id, {"stop_requested": what, "updated_at": now}
            )
            reason = "RestartRequested" if what is StopRequest.RESTART else "StopRequested"
            await self._event(conn, instance, reason, f"by {ctx.principal.name}", now)
            verb = "restart" if what is StopRequest.RESTART else "stop"
            await self.audit.record(
                conn, ctx, verb, "Instance", instance.tenant, instance.project, name
            )
        await self.notifier.notify("reconcile", f"instance:{instance.id}")
        return dataclasses.replace(instance, stop_requested=what, updated_at=now)

    # -- controllers -----------------------------------------------------------------------

    async def all(self) -> list[Instance]:
        async with self.db.read() as conn:
            return await InstanceRepository(conn).find(include_stopped=False)

    async def known_ids(self) -> set[InstanceId]:
        async with self.db.read() as conn:
            return await InstanceRepository(conn).ids()

    async def stopped_before(self, cutoff: datetime) -> list[Instance]:
        async with self.db.read() as conn:
            return await InstanceRepository(conn).stopped_before(cutoff)

    async def forget(self, instance: Instance) -> None:
        """Delete a stopped instance's row and its events (the runtime has removed the rest)."""
        async with self.db.write() as conn:
            await InstanceRepository(conn).delete(instance.id)
            await ResourceEventRepository(conn).delete(
                kind="Instance", tenant=instance.tenant, project=instance.project,
                name=instance.name,
            )  # fmt: skip

    async def create(self, agent: ResourceRecord, runtime: str) -> Instance:
        now = self.clock.now()
        instance = Instance(
            id=InstanceId(str(uuid.uuid4())),
            name=f"{agent.key.name[:56]}-{secrets.token_hex(3)[:5]}",
            tenant=agent.key.tenant,
            project=agent.key.project,
            agent=agent.key.name,
            agent_uid=agent.uid,
            agent_generation=agent.generation,
            revision="",  # recorded at launch
            runtime=runtime,
            phase=InstancePhase.PENDING,
            liveness="starting",
            handle=None,
            token_id=None,
            restarts=0,
            consecutive_failures=0,
            backoff_until=None,
            last_error=None,
            stop_requested=StopRequest.NONE,
            heartbeat_at=None,
            started_at=None,
            stopped_at=None,
            created_at=now,
            updated_at=now,
        )
        async with self.db.write() as conn:
            await InstanceRepository(conn).insert(instance)
        return instance

    async def transition(
        self,
        instance: Instance,
        phase: InstancePhase,
        *,
        reason: str | None = None,
        message: str = "",
        warning: bool = False,
        **values: Any,
    ) -> Instance | None:
        """Move ``instance`` from the phase it was read in to ``phase`` (checked by the
        lifecycle rules) with other column values, and record an event if ``reason`` is given.
        Returns the moved instance, or None if it changed since it was read (a lost race: the
        caller reads it again on its next pass)."""
        now = self.clock.now()
        values["updated_at"] = now
        async with self.db.write() as conn:
            moved = await InstanceRepository(conn).move_instance(
                instance.id, instance.phase, phase, values
            )
            if moved and reason:
                await self._event(conn, instance, reason, message, now, warning=warning)
        if not moved:
            log.info("instance %s changed while it was moved to %s", instance.name, phase.value)
            return None
        return dataclasses.replace(instance, phase=phase, **values)

    async def update(
        self, instance: Instance, *, reason: str | None = None, message: str = "", **values: Any
    ) -> Instance:
        """Write columns other than the phase (counters, requests), and maybe an event."""
        now = self.clock.now()
        values["updated_at"] = now
        async with self.db.write() as conn:
            await InstanceRepository(conn).update(instance.id, values)
            if reason:
                await self._event(conn, instance, reason, message, now)
        return dataclasses.replace(instance, **values)

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
        instance: Instance,
        reason: str,
        message: str,
        now: datetime,
        *,
        warning: bool = False,
    ) -> None:
        await ResourceEventRepository(conn).add(
            tenant=instance.tenant,
            project=instance.project,
            kind="Instance",
            name=instance.name,
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
             "time": r["created_at"]}
            for r in rows
        ]  # fmt: skip
