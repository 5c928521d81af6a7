"""Long polls on one task: wait until it has started or finished, and say why it still waits.

`clawfleet run --wait` and `--follow` wait here instead of polling. The waiter subscribes to the
task's channel (``task:<id>``, notified on claim, events, completion, requeue and cancel) before
it reads the task again, so a change between the read and the wait still wakes it, and it waits
on the injected clock, so the poll runs in fake time in tests.

While the task is pending, the answer says why, from the task's retry state and from what the
agent controller last wrote into each candidate agent's status: stopped, scaled to zero,
degraded with its last error, asleep, starting, or busy. Every role that may read a task may
read the agents of its project, so the reason reveals nothing the caller could not see.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from clawfleet.core.clock import Clock
from clawfleet.core.errors import NotFound
from clawfleet.domain.lifecycle import TASK_TERMINAL, TaskState, retry_delay
from clawfleet.domain.resources import ResourceKey, ResourceRecord
from clawfleet.domain.selectors import parse_selector
from clawfleet.schemas.task_waits import WaitUntil
from clawfleet.services.context import RequestContext
from clawfleet.services.policy import Verb, authorize
from clawfleet.services.task_views import view_task
from clawfleet.store.db import Database
from clawfleet.store.notify import Notifier
from clawfleet.store.repositories.resources import ResourceRepository
from clawfleet.store.repositories.tasks import TaskRepository

MAX_REASONS = 5  # a selector may match many agents; the first few say enough


@dataclass(frozen=True)
class TaskWait:
    task: dict[str, Any]  # the task view
    waiting: str | None  # why a pending task is not running yet


class TaskWaits:
    def __init__(self, db: Database, clock: Clock, notifier: Notifier) -> None:
        self.db = db
        self.clock = clock
        self.notifier = notifier

    async def wait(
        self, ctx: RequestContext, name: str, until: WaitUntil, within: float
    ) -> TaskWait:
        """The task once it has reached ``until`` (started: claimed by an instance, or
        finished; finished: done, failed or cancelled), or as it is after ``within`` seconds.
        Answers at once when the condition already holds; 404 as ``GET /tasks/{name}`` does."""
        deadline = self.clock.monotonic() + within
        task_id = (await self._task(ctx, name))["id"]
        with self.notifier.subscribe(f"task:{task_id}") as woken:
            while True:  # subscribed first, then read: a change in between still wakes us
                row = await self._task(ctx, name)
                left = deadline - self.clock.monotonic()
                if _reached(row, until) or left <= 0 or self.notifier.closing:
                    break
                await woken.wait(left)
        waiting = await self._why(row) if row["state"] == TaskState.PENDING.value else None
        return TaskWait(view_task(row), waiting)

    async def _task(self, ctx: RequestContext, name: str) -> dict[str, Any]:
        """The task row, authorized as ``TaskService.get`` does."""
        async with self.db.read() as conn:
            row = await TaskRepository(conn).get(name)
        if row is None:
            raise NotFound(f"task {name!r} not found; list tasks with `clawfleet get tasks`")
        what = f"task {name!r}"
        authorize(ctx.principal, Verb.GET, "Task", row["tenant"], row["project"], what=what)
        return row

    async def _why(self, row: dict[str, Any]) -> str:
        """Why the pending task ``row`` has not been taken by an instance yet."""
        if row["attempts"]:
            delay = retry_delay(row["attempts"], row["backoff_seconds"])
            left = (row["updated_at"] + timedelta(seconds=delay) - self.clock.now()).total_seconds()
            if left > 0:
                return (
                    f"waiting for its retry backoff (attempt {row['attempts'] + 1} of "
                    f"{row['max_attempts']} in {math.ceil(left)}s)"
                )
        async with self.db.read() as conn:
            resources = ResourceRepository(conn)
            if row["agent"]:
                key = ResourceKey("Agent", row["tenant"], row["project"], row["agent"])
                record = await resources.get(key)
                if record is None:
                    return f"agent {row['agent']!r} no longer exists in project {row['project']!r}"
                return agent_reason(record)
            records = await resources.list(
                "Agent", tenant=row["tenant"], project=row["project"],
                selector=parse_selector(row["selector"]), after=None, limit=MAX_REASONS + 1,
            )  # fmt: skip
        if not records:
            return f"no agent in project {row['project']!r} matches {row['selector']!r} any more"
        reasons = [agent_reason(record) for record in records[:MAX_REASONS]]
        more = " (and more)" if len(records) > MAX_REASONS else ""
        return "no matching agent can take it now: " + "; ".join(reasons) + more


def _reached(row: dict[str, Any], until: WaitUntil) -> bool:
    state = TaskState(row["state"])
    if until == "finished":
        return state in TASK_TERMINAL
    return state not in (TaskState.PENDING, TaskState.BLOCKED)


def agent_reason(agent: ResourceRecord) -> str:
    """Why ``agent`` is not taking work, from its spec and the status its controller wrote."""
    spec, status = agent.spec, agent.status or {}
    name, tenant, project = agent.key.name, agent.key.tenant, agent.key.project
    who = f"agent {name!r}"
    scope = f"-t {tenant} -p {project}"
    if spec.get("state") == "Stopped":
        hint = f"start it with `clawfleet agent wake {name} {scope}`"
        return f"{who} has no ready instance: phase Stopped ({hint})"
    if spec.get("replicas", 1) == 0:
        hint = f"scale it up with `clawfleet agent scale {name} 1 {scope}`"
        return f"{who} has no ready instance: replicas 0 ({hint})"
    phase, ready = status.get("phase"), int(status.get("readyReplicas") or 0)
    if phase is None:
        return f"{who} has no ready instance yet (its controller has not reported on it)"
    if phase == "Degraded":
        error = status.get("lastError")
        return f"{who} has no ready instance: phase Degraded" + (f": {error}" if error else "")
    if status.get("asleep") or phase == "Sleeping":
        return f"{who} has no ready instance: phase Sleeping (the task wakes it)"
    if ready:
        return f"{who} has {ready} ready instance(s), all busy; the task is queued"
    return f"{who} has no ready instance: phase {phase} (its instances are starting)"
