"""How runs end and what their tasks become: events, completion, failure and retry.

A run ends once: ``RunRepository.finish`` moves it from running with a compare-and-swap, so a
retried completion, the reaper and a re-registering runner can race without recording two
outcomes. The task follows its current run only, and a failed attempt is requeued to every
candidate agent while its retry policy allows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from clawfleet.core.clock import Clock
from clawfleet.core.errors import NotFound
from clawfleet.domain.lifecycle import (
    FailureKind,
    RunState,
    TaskState,
    check_run,
    check_task,
    retry_delay,
    task_state_after_failure,
)
from clawfleet.domain.resources import ResourceKey
from clawfleet.domain.selectors import parse_selector
from clawfleet.schemas.runner import CompleteIn, EventIn
from clawfleet.store.db import Database
from clawfleet.store.notify import Notifier
from clawfleet.store.repositories.resources import ResourceRepository
from clawfleet.store.repositories.runs import RunRepository
from clawfleet.store.repositories.tasks import QueueRepository, TaskRepository


def failure_kind(text: str | None) -> FailureKind:
    try:
        return FailureKind(text or FailureKind.AGENT_ERROR.value)
    except ValueError:
        return FailureKind.AGENT_ERROR


@dataclass
class Ended:
    """Runs that ended in one transaction, and where their tasks were requeued."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    requeued_to: list[str] = field(default_factory=list)  # one agent uid per requeued task

    def channels(self) -> list[str]:
        # One `agent:` wake-up per requeued task and candidate: each wakes one waiting runner,
        # so three retried tasks reach three idle runners, not one.
        return [
            *(f"agent:{uid}" for uid in self.requeued_to),
            *(f"run:{run['id']}" for run in self.runs),
            *(f"task:{run['task_id']}" for run in self.runs),
        ]


class RunOutcomes:
    def __init__(self, db: Database, clock: Clock, notifier: Notifier) -> None:
        self.db = db
        self.clock = clock
        self.notifier = notifier

    async def _own_run(
        self, conn: AsyncConnection, instance_id: str, run_id: str
    ) -> dict[str, Any]:
        run = await RunRepository(conn).get(run_id, for_update=True)
        if run is None or run["instance_id"] != instance_id:
            raise NotFound(f"run {run_id!r} not found for this instance")
        return run

    async def post_events(self, instance_id: str, run_id: str, events: list[EventIn]) -> int:
        now = self.clock.now()
        async with self.db.write() as conn:
            run = await self._own_run(conn, instance_id, run_id)
            last = await RunRepository(conn).add_events(
                run_id,
                [{"runner_seq": e.seq, "type": e.type, "data": e.data} for e in events],
                now,
            )
            if run["state"] == RunState.RUNNING.value:
                tasks = TaskRepository(conn)
                await tasks.update(
                    run["task_id"],
                    {
                        "state": check_task(TaskState.CLAIMED, TaskState.WORKING).value,
                        "updated_at": now,
                    },
                    expected_state=TaskState.CLAIMED.value,
                )
        await self.notifier.notify(f"run:{run_id}", f"task:{run['task_id']}")
        return last

    async def complete(self, instance_id: str, run_id: str, result: CompleteIn) -> dict[str, Any]:
        """Record the run's result once; a repeated complete returns the recorded state."""
        now = self.clock.now()
        ended = Ended()
        async with self.db.write() as conn:
            run = await self._own_run(conn, instance_id, run_id)
            events = [{"runner_seq": e.seq, "type": e.type, "data": e.data} for e in result.events]
            if run["state"] != RunState.RUNNING.value:
                if events:  # a retried completion may still carry events we lack
                    await RunRepository(conn).add_events(run_id, events, now)
                return {"state": run["state"], "recorded": False}
            if result.status == "succeeded":
                await self._succeed(conn, run, result, now, events)
                ended.runs.append(run)
                state = RunState.SUCCEEDED.value
            else:
                kind = failure_kind(result.failure_kind)
                task = await TaskRepository(conn).get(run["task_id"])
                if kind is FailureKind.CANCELLED and task and not task["cancel_requested"]:
                    kind = FailureKind.AGENT_ERROR  # the agent cancelled itself; not the user
                await self.fail(
                    conn,
                    run,
                    kind,
                    result.error or "",
                    now,
                    ended,
                    usage=result.usage,
                    output=result.output,
                    events=events,
                )
                state = (
                    RunState.CANCELLED.value
                    if kind is FailureKind.CANCELLED
                    else RunState.FAILED.value
                )
        await self.notifier.notify(*ended.channels())
        return {"state": state, "recorded": True}

    async def _succeed(
        self,
        conn: AsyncConnection,
        run: dict[str, Any],
        result: CompleteIn,
        now: datetime,
        events: list[dict[str, Any]],
    ) -> None:
        check_run(RunState.RUNNING, RunState.SUCCEEDED)
        output = {"output": result.output}
        if not await RunRepository(conn).finish(
            run["id"],
            {
                "state": RunState.SUCCEEDED.value,
                "result": output,
                "usage": result.usage,
                "finished_at": now,
            },
        ):
            return
        status = {"type": "status", "data": {"state": "succeeded"}}
        await RunRepository(conn).add_events(run["id"], [*events, status], now)
        tasks = TaskRepository(conn)
        task = await tasks.get(run["task_id"], for_update=True)
        if task is None or task["current_run"] != run["id"]:
            return
        check_task(TaskState(task["state"]), TaskState.DONE)
        await tasks.update(
            task["id"],
            {"state": TaskState.DONE.value, "result": output, "failure_kind": None, "error": None,
             "finished_at": now, "updated_at": now},
        )  # fmt: skip

    async def fail(
        self,
        conn: AsyncConnection,
        run: dict[str, Any],
        kind: FailureKind,
        error: str,
        now: datetime,
        ended: Ended,
        *,
        usage: dict[str, Any] | None = None,
        output: Any = None,
        events: list[dict[str, Any]] | None = None,
    ) -> TaskState | None:
        """End a run as failed (or cancelled) and decide its task: retry, fail or cancel."""
        run_state = RunState.CANCELLED if kind is FailureKind.CANCELLED else RunState.FAILED
        check_run(RunState(run["state"]), run_state)
        values = {"state": run_state.value, "failure_kind": kind.value, "error": error[:64 * 1024],
                  "usage": usage, "finished_at": now,
                  "result": {"output": output} if output is not None else None}  # fmt: skip
        runs = RunRepository(conn)
        if not await runs.finish(run["id"], values):
            return None
        ended.runs.append(run)
        await runs.add_events(
            run["id"],
            [
                *(events or []),
                {
                    "type": "status",
                    "data": {
                        "state": run_state.value,
                        "failureKind": kind.value,
                        "error": error[:2000],
                    },
                },
            ],
            now,
        )
        tasks = TaskRepository(conn)
        task = await tasks.get(run["task_id"], for_update=True)
        if task is None or task["current_run"] != run["id"]:
            return None
        source = TaskState(task["state"])
        if task["cancel_requested"]:
            kind = FailureKind.CANCELLED
        target = task_state_after_failure(kind, task["attempts"], task["max_attempts"])
        check_task(source, target)
        update: dict[str, Any] = {
            "state": target.value,
            "updated_at": now,
            "failure_kind": kind.value,
            "error": error[: 64 * 1024],
        }
        if target is TaskState.PENDING:
            update["current_run"] = None
            not_before = now + timedelta(
                seconds=retry_delay(task["attempts"], task["backoff_seconds"])
            )
            targets = await self._candidates(conn, task)
            if not targets:
                update.update(
                    state=TaskState.FAILED.value,
                    finished_at=now,
                    error=f"{error}; no agent left to retry on",
                )
            else:
                await QueueRepository(conn, skip_locked=not self.db.is_sqlite).enqueue(
                    task["seq"], targets, task["priority"], not_before
                )
                ended.requeued_to.extend(targets)
        else:
            update["finished_at"] = now
        await tasks.update(task["id"], update)
        return TaskState(update["state"])

    async def _candidates(self, conn: AsyncConnection, task: dict[str, Any]) -> list[str]:
        resources = ResourceRepository(conn)
        if task["agent"]:
            record = await resources.get(
                ResourceKey("Agent", task["tenant"], task["project"], task["agent"])
            )
            return [record.uid] if record else []
        records = await resources.list(
            "Agent", tenant=task["tenant"], project=task["project"],
            selector=parse_selector(task["selector"]), after=None, limit=1000,
        )  # fmt: skip
        return [r.uid for r in records]

    async def fail_lost(
        self, conn: AsyncConnection, runs: list[dict[str, Any]], reason: str, ended: Ended
    ) -> None:
        """The runner of these runs is gone or restarted: they are lost, their tasks retried."""
        now = self.clock.now()
        for run in runs:
            await self.fail(conn, run, FailureKind.RUNNER_LOST, reason, now, ended)

    async def fail_instance_runs(self, instance_id: str, reason: str) -> int:
        """The instance is gone: its running runs are lost and their tasks retried."""
        ended = Ended()
        async with self.db.write() as conn:
            await self.fail_lost(conn, await RunRepository(conn).running_on(instance_id), reason,
                                 ended)  # fmt: skip
        await self.notifier.notify(*ended.channels())
        return len(ended.runs)
