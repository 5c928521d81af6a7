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

from clawfleet.core.clock import Clock
from clawfleet.domain.lifecycle import TASK_TERMINAL, FailureKind, TaskState, requeue_delay
from clawfleet.domain.resources import ResourceKey, ResourceRecord
from clawfleet.domain.selectors import parse_selector
from clawfleet.domain.tasks import Task
from clawfleet.schemas.task_waits import WaitUntil
from clawfleet.schemas.tasks import TaskOut
from clawfleet.services.context import RequestContext
from clawfleet.services.policy import Verb, authorize
from clawfleet.services.tasks import find_task, task_missing
from clawfleet.store.db import Database
from clawfleet.store.notify import Notifier
from clawfleet.store.repositories.resources import ResourceRepository

MAX_REASONS = 5  # a selector may match many agents; the first few say enough


@dataclass(frozen=True)
class TaskWait:
    task: TaskOut
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
        task = await self._task(ctx, name)
        with self.notifier.subscribe(f"task:{task.id}") as woken:
            while True:  # subscribed first, then read: a change in between still wakes us
                task = await self._task(ctx, task.id)
                left = deadline - self.clock.monotonic()
                if _reached(task, until) or left <= 0 or self.notifier.closing:
                    break
                await woken.wait(left)
        waiting = await self._why(task) if task.state is TaskState.PENDING else None
        return TaskWait(TaskOut.of(task), waiting)

    async def _task(self, ctx: RequestContext, name: str) -> Task:
        """The task (a name in the request's scope or a task id), authorized as a get is."""
        async with self.db.read() as conn:
            task = await find_task(conn, ctx, name)
        if task is None:
            raise task_missing(ctx, name)
        authorize(ctx.principal, Verb.GET, "Task", task.tenant, task.project, what=f"task {name!r}")
        return task

    async def _why(self, task: Task) -> str:
        """Why the pending ``task`` has not been taken by an instance yet."""
        if task.attempts:
            kind = task.failure_kind or FailureKind.AGENT_ERROR
            delay = requeue_delay(kind, task.attempts, task.backoff_seconds)
            left = (task.updated_at + timedelta(seconds=delay) - self.clock.now()).total_seconds()
            if left > 0:
                return (
                    f"waiting for its retry backoff (attempt {task.attempts + 1} of "
                    f"{task.max_attempts} in {math.ceil(left)}s)"
                )
        async with self.db.read() as conn:
            resources = ResourceRepository(conn)
            if task.agent:
                key = ResourceKey("Agent", task.tenant, task.project, task.agent)
                record = await resources.get(key)
                if record is None:
                    return f"agent {task.agent!r} no longer exists in project {task.project!r}"
                return agent_reason(record)
            records = await resources.list(
                "Agent", tenant=task.tenant, project=task.project,
                selector=parse_selector(task.selector), after=None, limit=MAX_REASONS + 1,
            )  # fmt: skip
        if not records:
            return f"no agent in project {task.project!r} matches {task.selector!r} any more"
        reasons = [agent_reason(record) for record in records[:MAX_REASONS]]
        more = " (and more)" if len(records) > MAX_REASONS else ""
        return "no matching agent can take it now: " + "; ".join(reasons) + more


def _reached(task: Task, until: WaitUntil) -> bool:
    state = task.state
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
