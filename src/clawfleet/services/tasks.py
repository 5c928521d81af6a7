"""Task use cases: submit, read, cancel and steer.

Submitting records the task and its queue rows in one transaction and then wakes the runners of
the candidate agents (and the agent controller, which wakes a sleeping agent). Cancel and steer
of a running task become commands for the runner that holds its run. A task is named like a
resource, uniquely per (tenant, project); its server-assigned id works from any scope.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from clawfleet.core.clock import Clock
from clawfleet.core.errors import (
    AlreadyExists,
    ConcurrentWrite,
    FieldError,
    InvalidInput,
    NotFound,
    NotRunning,
)
from clawfleet.domain.ids import is_task_id, new_task_id
from clawfleet.domain.kinds import AGENT
from clawfleet.domain.lifecycle import CancelAction, RunState, TaskState, on_cancel
from clawfleet.domain.limits import MAX_BACKOFF_SECONDS, MAX_TASK_TIMEOUT_SECONDS
from clawfleet.domain.resources import ResourceKey, ResourceRecord
from clawfleet.domain.selectors import parse_selector
from clawfleet.domain.tasks import Run, Task
from clawfleet.schemas.base import parse_duration
from clawfleet.schemas.runs import RunOut
from clawfleet.schemas.tasks import SteerOut, TaskIn, TaskOut
from clawfleet.services.audit import AuditLog
from clawfleet.services.context import RequestContext
from clawfleet.services.policy import Verb, authorize, list_scope_for, sees
from clawfleet.services.runs import find_run
from clawfleet.services.scoping import resolve_key
from clawfleet.store.db import Database
from clawfleet.store.notify import Notifier
from clawfleet.store.paging import Page
from clawfleet.store.repositories.resources import ResourceRepository
from clawfleet.store.repositories.runs import RunRepository
from clawfleet.store.repositories.tasks import QueueRepository, TaskRepository

RECONCILE_CHANNEL = "reconcile"


async def find_task(conn: AsyncConnection, ctx: RequestContext, name: str) -> Task | None:
    """The task named ``name`` in the request's scope, or the task whose id it is. A task the
    caller holds no role for is not found either (``policy.sees``): tenant B's task, by name or
    by id, is answered to tenant A as a name that exists nowhere."""
    scope = resolve_key(ctx, AGENT, name)
    tasks = TaskRepository(conn)
    task = _seen(ctx, await tasks.get_by_name(scope.tenant, scope.project, name))
    if task is None and is_task_id(name):
        task = _seen(ctx, await tasks.get(name))
    return task


def _seen(ctx: RequestContext, task: Task | None) -> Task | None:
    return task if task is not None and sees(ctx.principal, task.tenant, task.project) else None


def task_missing(ctx: RequestContext, name: str) -> NotFound:
    """The one answer for a task that is not there, or not there for the caller."""
    scope = resolve_key(ctx, AGENT, name)
    return NotFound(
        f"task {name!r} not found in tenant {scope.tenant!r}, project {scope.project!r}; "
        f"list tasks with `clawfleet get tasks --tenant {scope.tenant} --project {scope.project}`"
    )


class TaskService:
    def __init__(self, db: Database, clock: Clock, notifier: Notifier) -> None:
        self.db = db
        self.clock = clock
        self.notifier = notifier
        self.audit = AuditLog(db, clock)

    async def submit(
        self, ctx: RequestContext, body: TaskIn, *, idempotency_key: str | None = None
    ) -> tuple[TaskOut, bool]:
        """Queue a task; returns (view, created). A repeated idempotency key returns the first."""
        meta, spec = body.metadata, body.spec
        scope = resolve_key(
            ctx, AGENT, meta.name or "x", meta_tenant=meta.tenant, meta_project=meta.project
        )
        await self.audit.guard(
            ctx, Verb.CREATE, "Task", scope.tenant, scope.project, meta.name or "-",
            what=f"project {scope.project!r}",
        )  # fmt: skip
        key = idempotency_key or spec.idempotency_key
        now = self.clock.now()
        task_id = new_task_id()
        name = meta.name or task_id
        exists = AlreadyExists(
            f"task {name!r} already exists in tenant {scope.tenant!r}, project "
            f"{scope.project!r}; give another name, or leave it out to get a generated one"
        )
        try:
            async with self.db.write() as conn:
                tasks = TaskRepository(conn)
                if key and (
                    existing := await tasks.find_by_idempotency_key(
                        scope.tenant, scope.project, key
                    )
                ):
                    return TaskOut.of(existing), False
                if meta.name and await tasks.get_by_name(scope.tenant, scope.project, name):
                    raise exists
                targets, wake = await self._targets(conn, scope, spec.agent, spec.selector)
                task = await tasks.insert({
                    "id": task_id, "name": name, "tenant": scope.tenant, "project": scope.project,
                    "agent": spec.agent, "selector": spec.selector, "prompt": spec.prompt,
                    "data": spec.data, "labels": dict(meta.labels), "priority": spec.priority,
                    "idempotency_key": key,
                    "timeout_seconds": (
                        parse_duration(spec.timeout, MAX_TASK_TIMEOUT_SECONDS)
                        if spec.timeout
                        else None
                    ),
                    "max_attempts": spec.retry.max_attempts,
                    "backoff_seconds": parse_duration(spec.retry.backoff, MAX_BACKOFF_SECONDS),
                    "attempts": 0, "state": TaskState.PENDING.value, "cancel_requested": 0,
                    "created_by": ctx.principal.name, "created_at": now, "updated_at": now,
                })  # fmt: skip
                await QueueRepository(conn, skip_locked=not self.db.is_sqlite).enqueue(
                    task.seq, targets, spec.priority, now
                )
                await self.audit.record(
                    conn, ctx, "create", "Task", scope.tenant, scope.project, name,
                    {"target": spec.agent or spec.selector, "uid": task_id},
                )  # fmt: skip
        except IntegrityError as exc:  # a concurrent submit took the name (or the key) first
            raise exists from exc
        # The agent controller only needs waking when no instance is ready to take the task.
        channels = [f"agent:{uid}" for uid in targets] + ([RECONCILE_CHANNEL] if wake else [])
        await self.notifier.notify(*channels)
        return TaskOut.of(task), True

    async def _targets(
        self, conn: AsyncConnection, scope: ResourceKey, agent: str | None, selector: str | None
    ) -> tuple[list[str], bool]:
        """Candidate agent uids, and whether any of them is asleep or has no ready instance."""
        resources = ResourceRepository(conn)
        if agent:
            key = ResourceKey("Agent", scope.tenant, scope.project, agent)
            record = await resources.get(key)
            if record is None:
                raise NotFound(
                    f"{key.describe()} not found; list agents with "
                    f"`clawfleet get agents --tenant {scope.tenant} --project {scope.project}`"
                )
            return [record.uid], _needs_wake(record)
        records = await resources.list(
            "Agent",
            tenant=scope.tenant,
            project=scope.project,
            selector=parse_selector(selector),
            after=None,
            limit=1000,
        )
        if not records:
            raise InvalidInput(
                f"no agent in project {scope.project!r} matches selector {selector!r}",
                [FieldError("spec.selector", "matches no agent", "no-match")],
            )
        return [record.uid for record in records], any(_needs_wake(r) for r in records)

    # -- reads ---------------------------------------------------------------------------------

    async def task(self, ctx: RequestContext, name: str, verb: Verb = Verb.GET) -> Task:
        """The task ``name`` (a name in the request's scope, or a task id), authorized."""
        async with self.db.read() as conn:
            task = await find_task(conn, ctx, name)
        if task is None:
            raise task_missing(ctx, name)
        what = f"task {name!r}"
        if verb is Verb.GET:
            authorize(ctx.principal, verb, "Task", task.tenant, task.project, what=what)
        else:
            await self.audit.guard(ctx, verb, "Task", task.tenant, task.project, name, what=what)
        return task

    async def get(self, ctx: RequestContext, name: str) -> TaskOut:
        return TaskOut.of(await self.task(ctx, name))

    async def find(
        self,
        ctx: RequestContext,
        *,
        state: str | None = None,
        agent: str | None = None,
        all_tenants: bool = False,
        all_projects: bool = False,
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page[TaskOut]:
        tenant, project, scopes = list_scope_for(
            ctx.principal, "Task", ctx.default_tenant, ctx.default_project,
            all_tenants=all_tenants, all_projects=all_projects,
        )  # fmt: skip
        async with self.db.read() as conn:
            found = await TaskRepository(conn).page(
                tenant=tenant, project=project, scopes=scopes, state=state, agent=agent,
                cursor=cursor, limit=limit,
            )  # fmt: skip
        return Page([TaskOut.of(t) for t in found.items], found.next_cursor)

    async def runs(self, ctx: RequestContext, name: str) -> list[RunOut]:
        task = await self.task(ctx, name)
        async with self.db.read() as conn:
            found = await RunRepository(conn).find(task_id=task.id, limit=1000)
        return [RunOut.of(r) for r in found]

    # -- commands ------------------------------------------------------------------------------

    async def cancel(self, ctx: RequestContext, name: str) -> TaskOut:
        task = await self.task(ctx, name, Verb.UPDATE)
        now = self.clock.now()
        wake: list[str] = []
        async with self.db.write() as conn:
            tasks = TaskRepository(conn)
            current = await tasks.get(task.id, for_update=True)
            assert current is not None
            action = on_cancel(current.state)
            if action is CancelAction.NOTHING:
                return TaskOut.of(current)
            if action is CancelAction.CANCEL_NOW:
                moved = await tasks.move(
                    current.id, current.state, TaskState.CANCELLED,
                    {"failure_kind": "cancelled", "error": f"cancelled by {ctx.principal.name}",
                     "finished_at": now, "updated_at": now},
                )  # fmt: skip
                if not moved:  # claimed in between: a stale read, so the caller retries
                    raise ConcurrentWrite(f"task {name!r} changed while cancelling it; try again")
                await QueueRepository(conn, skip_locked=not self.db.is_sqlite).remove([current.seq])
                wake.append(f"task:{current.id}")
            else:
                await tasks.update(current.id, {"cancel_requested": 1, "updated_at": now})
                wake += await self._ask_runner_to_cancel(conn, ctx, current)
            await self.audit.record(
                conn, ctx, "cancel", "Task", current.tenant, current.project, current.name
            )
            after = await tasks.get(current.id)
        await self.notifier.notify(*wake)
        assert after is not None
        return TaskOut.of(after)

    async def _ask_runner_to_cancel(
        self, conn: AsyncConnection, ctx: RequestContext, task: Task
    ) -> list[str]:
        runs = RunRepository(conn)
        run = await runs.get(task.current_run) if task.current_run else None
        if run is None or run.state is not RunState.RUNNING:
            return []
        now = self.clock.now()
        await runs.add_command(run.instance_id, run.id, "cancel", {"reason": "user"}, now)
        data = {"cancelRequested": True, "by": ctx.principal.name}
        await runs.add_events(run.id, [{"type": "status", "data": data}], now)
        return [f"instance:{run.instance_id}", f"run:{run.id}"]

    async def steer(self, ctx: RequestContext, name: str, message: str) -> SteerOut:
        """Send ``message`` into the running attempt of task (or run) ``name``."""
        run = await self._active_run(ctx, name)
        now = self.clock.now()
        async with self.db.write() as conn:
            command = await RunRepository(conn).add_command(
                run.instance_id, run.id, "steer", {"message": message}, now
            )
            await self.audit.record(
                conn, ctx, "steer", "Task", run.tenant, run.project, run.task_name,
                {"run": run.id},
            )  # fmt: skip
        await self.notifier.notify(f"instance:{run.instance_id}")
        return SteerOut(run=run.id, command=command)

    async def _active_run(self, ctx: RequestContext, name: str) -> Run:
        async with self.db.read() as conn:
            run = await find_run(conn, ctx, name)
            if run is None:
                task = await find_task(conn, ctx, name)
                if task is not None and task.current_run:
                    run = await RunRepository(conn).get(task.current_run)
        if run is None:
            raise NotFound(f"no task or run {name!r}; list them with `clawfleet get tasks`")
        await self.audit.guard(
            ctx, Verb.UPDATE, "Task", run.tenant, run.project, run.task_name,
            what=f"task or run {name!r}",
        )  # fmt: skip
        if run.state is not RunState.RUNNING:
            state = run.state.value
            ended = "was cancelled" if state == "cancelled" else f"has already {state}"
            raise NotRunning(f"run {run.id} {ended}; only a running task can be steered")
        return run


def _needs_wake(record: ResourceRecord) -> bool:
    status = record.status or {}
    return bool(status.get("asleep")) or not status.get("readyReplicas")
