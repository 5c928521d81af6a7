"""Task use cases: submit, read, cancel and steer.

Submitting records the task and its queue rows in one transaction and then wakes the runners of
the candidate agents (and the agent controller, which wakes a sleeping agent). Cancel and steer
of a running task become commands for the runner that holds its run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError

from clawfleet.core.clock import Clock
from clawfleet.core.errors import Conflict, FieldError, InvalidInput, NotFound
from clawfleet.domain.ids import new_task_id
from clawfleet.domain.kinds import AGENT
from clawfleet.domain.lifecycle import TASK_TERMINAL, TaskState, check_task
from clawfleet.domain.resources import ResourceKey
from clawfleet.domain.selectors import parse_selector
from clawfleet.schemas.base import parse_duration
from clawfleet.schemas.tasks import TaskIn
from clawfleet.services.audit import AuditLog
from clawfleet.services.context import RequestContext
from clawfleet.services.policy import Verb, authorize, list_scope_for
from clawfleet.services.scoping import resolve_key
from clawfleet.services.task_views import page, view_event, view_run, view_task
from clawfleet.store.db import Database
from clawfleet.store.notify import Notifier
from clawfleet.store.repositories.resources import ResourceRepository
from clawfleet.store.repositories.runs import RunRepository
from clawfleet.store.repositories.tasks import QueueRepository, TaskRepository

RECONCILE_CHANNEL = "reconcile"


@dataclass(frozen=True)
class TaskPage:
    items: list[dict[str, Any]]
    next_cursor: str | None


class TaskService:
    def __init__(self, db: Database, clock: Clock, notifier: Notifier) -> None:
        self.db = db
        self.clock = clock
        self.notifier = notifier
        self.audit = AuditLog(db, clock)

    async def submit(
        self, ctx: RequestContext, task: TaskIn, *, idempotency_key: str | None = None
    ) -> tuple[dict[str, Any], bool]:
        """Queue a task; returns (view, created). A repeated idempotency key returns the first."""
        meta, spec = task.metadata, task.spec
        scope = resolve_key(
            ctx, AGENT, meta.name or "x", meta_tenant=meta.tenant, meta_project=meta.project
        )
        await self.audit.guard(
            ctx, Verb.CREATE, "Task", scope.tenant, scope.project, meta.name or "-",
            what=f"project {scope.project!r}",
        )  # fmt: skip
        key = idempotency_key or spec.idempotency_key
        now = self.clock.now()
        task_id = meta.name or new_task_id()
        try:
            async with self.db.write() as conn:
                tasks = TaskRepository(conn)
                if key and (
                    existing := await tasks.find_by_idempotency_key(
                        scope.tenant, scope.project, key
                    )
                ):
                    return view_task(existing), False
                if meta.name and await tasks.get(task_id) is not None:
                    raise Conflict(f"task {task_id!r} already exists", code="already-exists")
                targets, wake = await self._targets(conn, scope, spec.agent, spec.selector)
                row = {
                    "id": task_id,
                    "tenant": scope.tenant,
                    "project": scope.project,
                    "agent": spec.agent,
                    "selector": spec.selector,
                    "prompt": spec.prompt,
                    "data": spec.data,
                    "labels": dict(meta.labels),
                    "priority": spec.priority,
                    "idempotency_key": key,
                    "timeout_seconds": parse_duration(spec.timeout) if spec.timeout else None,
                    "max_attempts": spec.retry.max_attempts,
                    "backoff_seconds": parse_duration(spec.retry.backoff),
                    "attempts": 0,
                    "state": TaskState.PENDING.value,
                    "cancel_requested": 0,
                    "created_by": ctx.principal.name,
                    "created_at": now,
                    "updated_at": now,
                }
                seq = await tasks.insert(row)
                await QueueRepository(conn, skip_locked=not self.db.is_sqlite).enqueue(
                    seq, targets, spec.priority, now
                )
                await self.audit.record(
                    conn, ctx, "create", "Task", scope.tenant, scope.project, task_id,
                    {"target": spec.agent or spec.selector},
                )  # fmt: skip
                row.update(
                    seq=seq,
                    current_run=None,
                    result=None,
                    failure_kind=None,
                    error=None,
                    finished_at=None,
                )
        except IntegrityError as exc:
            raise Conflict(f"task {task_id!r} already exists", code="already-exists") from exc
        # The agent controller only needs waking when no instance is ready to take the task.
        channels = [f"agent:{uid}" for uid in targets] + ([RECONCILE_CHANNEL] if wake else [])
        await self.notifier.notify(*channels)
        return view_task(row), True

    async def _targets(
        self, conn: Any, scope: ResourceKey, agent: str | None, selector: str | None
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

    async def _task(self, ctx: RequestContext, name: str, verb: Verb = Verb.GET) -> dict[str, Any]:
        async with self.db.read() as conn:
            row = await TaskRepository(conn).get(name)
        missing = f"task {name!r} not found; list tasks with `clawfleet get tasks`"
        if row is None:
            raise NotFound(missing)
        what = f"task {name!r}"
        if verb is Verb.GET:
            authorize(ctx.principal, verb, "Task", row["tenant"], row["project"], what=what)
        else:
            await self.audit.guard(
                ctx, verb, "Task", row["tenant"], row["project"], name, what=what
            )
        return row

    async def get(self, ctx: RequestContext, name: str) -> dict[str, Any]:
        return view_task(await self._task(ctx, name))

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
    ) -> TaskPage:
        tenant, project, scopes = list_scope_for(
            ctx.principal, "Task", ctx.default_tenant, ctx.default_project,
            all_tenants=all_tenants, all_projects=all_projects,
        )  # fmt: skip
        after = _cursor(cursor)
        async with self.db.read() as conn:
            rows = await TaskRepository(conn).find(
                tenant=tenant,
                project=project,
                scopes=scopes,
                state=state,
                agent=agent,
                after_seq=after,
                limit=limit + 1,
            )
        return TaskPage(*page(rows, limit, view_task, lambda row: str(row["seq"])))

    async def runs(self, ctx: RequestContext, name: str) -> list[dict[str, Any]]:
        row = await self._task(ctx, name)
        async with self.db.read() as conn:
            found = await RunRepository(conn).find(task_id=row["id"], limit=1000)
        return [view_run(r) for r in found]

    # -- commands ------------------------------------------------------------------------------

    async def cancel(self, ctx: RequestContext, name: str) -> dict[str, Any]:
        row = await self._task(ctx, name, Verb.UPDATE)
        now = self.clock.now()
        instance = None
        async with self.db.write() as conn:
            tasks = TaskRepository(conn)
            current = await tasks.get(row["id"], for_update=True)
            assert current is not None
            state = TaskState(current["state"])
            if state in TASK_TERMINAL:
                return view_task(current)
            if state in (TaskState.PENDING, TaskState.BLOCKED):
                check_task(state, TaskState.CANCELLED)
                values = {
                    "state": TaskState.CANCELLED.value,
                    "failure_kind": "cancelled",
                    "error": f"cancelled by {ctx.principal.name}",
                    "finished_at": now,
                    "updated_at": now,
                }
                await tasks.update(current["id"], values)
                await QueueRepository(conn, skip_locked=not self.db.is_sqlite).remove(
                    [current["seq"]]
                )
            else:
                values = {"cancel_requested": 1, "updated_at": now}
                await tasks.update(current["id"], values)
                runs = RunRepository(conn)
                run = await runs.get(current["current_run"]) if current["current_run"] else None
                if run is not None and run["state"] == "running":
                    instance = run["instance_id"]
                    await runs.add_command(instance, run["id"], "cancel", {"reason": "user"}, now)
                    await runs.add_events(
                        run["id"],
                        [
                            {
                                "type": "status",
                                "data": {"cancelRequested": True, "by": ctx.principal.name},
                            }
                        ],
                        now,
                    )
            current.update(values)
            await self.audit.record(
                conn, ctx, "cancel", "Task", current["tenant"], current["project"], current["id"]
            )
        if instance:
            await self._wake(f"instance:{instance}", f"run:{current['current_run']}")
        if current["state"] == TaskState.CANCELLED.value:
            await self._wake(f"task:{current['id']}")
        return view_task(current)

    async def steer(self, ctx: RequestContext, name: str, message: str) -> dict[str, Any]:
        """Send ``message`` into the running attempt of task (or run) ``name``."""
        run = await self._active_run(ctx, name)
        now = self.clock.now()
        async with self.db.write() as conn:
            runs = RunRepository(conn)
            command = await runs.add_command(
                run["instance_id"], run["id"], "steer", {"message": message}, now
            )
            await self.audit.record(
                conn, ctx, "steer", "Task", run["tenant"], run["project"], run["task_id"],
                {"run": run["id"]},
            )  # fmt: skip
        await self._wake(f"instance:{run['instance_id']}")
        return {"run": run["id"], "command": command, "status": "sent"}

    async def _active_run(self, ctx: RequestContext, name: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            run = await RunRepository(conn).get(name)
            if run is None:
                task = await TaskRepository(conn).get(name)
                if task is not None and task["current_run"]:
                    run = await RunRepository(conn).get(task["current_run"])
        if run is None:
            raise NotFound(f"no task or run {name!r}; list them with `clawfleet get tasks`")
        await self.audit.guard(
            ctx, Verb.UPDATE, "Task", run["tenant"], run["project"], run["task_id"],
            what=f"task or run {name!r}",
        )  # fmt: skip
        if run["state"] != "running":
            ended = (
                "was cancelled" if run["state"] == "cancelled" else f"has already {run['state']}"
            )
            raise Conflict(
                f"run {run['id']} {ended}; only a running task can be steered",
                code="not-running",
            )
        return run

    async def _wake(self, *channels: str) -> None:
        await self.notifier.notify(*channels)

    # -- runs ----------------------------------------------------------------------------------

    async def get_run(self, ctx: RequestContext, run_id: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            run = await RunRepository(conn).get(run_id)
        if run is None:
            raise NotFound(f"run {run_id!r} not found; list runs with `clawfleet get runs`")
        authorize(
            ctx.principal, Verb.GET, "Run", run["tenant"], run["project"], what=f"run {run_id!r}"
        )
        return run

    async def list_runs(
        self,
        ctx: RequestContext,
        *,
        task: str | None = None,
        state: str | None = None,
        all_tenants: bool = False,
        all_projects: bool = False,
        cursor: str | None = None,
        limit: int = 100,
    ) -> TaskPage:
        tenant, project, scopes = list_scope_for(
            ctx.principal, "Run", ctx.default_tenant, ctx.default_project,
            all_tenants=all_tenants, all_projects=all_projects,
        )  # fmt: skip
        async with self.db.read() as conn:
            rows = await RunRepository(conn).find(
                tenant=tenant,
                project=project,
                scopes=scopes,
                task_id=task,
                state=state,
                after=cursor,
                limit=limit + 1,
            )
        return TaskPage(*page(rows, limit, view_run, lambda row: str(row["id"])))

    async def events(
        self, ctx: RequestContext, run_id: str, *, after: int = 0, limit: int = 1000
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The run and its events with seq > ``after``, in order."""
        run = await self.get_run(ctx, run_id)
        async with self.db.read() as conn:
            rows = await RunRepository(conn).events(run_id, after=after, limit=limit)
            fresh = await RunRepository(conn).get(run_id)
        return fresh or run, [view_event(r) for r in rows]


def _needs_wake(record: Any) -> bool:
    status = record.status or {}
    return bool(status.get("asleep")) or not status.get("readyReplicas")


def _cursor(text: str | None) -> int | None:
    if text is None:
        return None
    if not text.isdigit():
        raise InvalidInput(
            "invalid continue token", [FieldError("continue", "not a token this server issued")]
        )
    return int(text)
