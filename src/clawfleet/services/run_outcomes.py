"""How runs end and what their tasks become: events, completion, failure and retry.

The decisions are the pure rules of ``domain.lifecycle`` (``on_events``, ``on_success``,
``on_failure``, ``reported_failure``); this module reads what they need, asks them, and persists
the answer through the repository moves. A run ends once (``RunRepository.finish`` is a
compare-and-swap from running), so a retried completion, the reaper and a re-registering runner
can race without recording two outcomes.
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
    Outcome,
    RunState,
    TaskState,
    on_events,
    on_failure,
    on_success,
    reported_failure,
    requeue_delay,
    would_retry,
)
from clawfleet.domain.resources import ResourceKey
from clawfleet.domain.selectors import parse_selector
from clawfleet.domain.tasks import Run, Task
from clawfleet.schemas.runner import CompleteIn, EventIn
from clawfleet.store.db import Database
from clawfleet.store.notify import Notifier
from clawfleet.store.repositories.resources import ResourceRepository
from clawfleet.store.repositories.runs import RunRepository
from clawfleet.store.repositories.tasks import QueueRepository, TaskRepository

MAX_ERROR = 64 * 1024  # stored
MAX_EVENT_ERROR = 2000  # in the run's status event


@dataclass
class Ended:
    """Runs that ended in one transaction, and where their tasks were requeued."""

    runs: list[Run] = field(default_factory=list)
    requeued_to: list[str] = field(default_factory=list)  # one agent uid per requeued task

    def channels(self) -> list[str]:
        # One `agent:` wake-up per requeued task and candidate: each wakes one waiting runner,
        # so three retried tasks reach three idle runners, not one.
        return [
            *(f"agent:{uid}" for uid in self.requeued_to),
            *(f"run:{run.id}" for run in self.runs),
            *(f"task:{run.task_id}" for run in self.runs),
        ]


def _events(result: CompleteIn) -> list[dict[str, Any]]:
    return [{"runner_seq": e.seq, "type": e.type, "data": e.data} for e in result.events]


class RunOutcomes:
    def __init__(self, db: Database, clock: Clock, notifier: Notifier) -> None:
        self.db = db
        self.clock = clock
        self.notifier = notifier

    async def _own_run(self, conn: AsyncConnection, instance_id: str, run_id: str) -> Run:
        run = await RunRepository(conn).get(run_id, for_update=True)
        if run is None or run.instance_id != instance_id:
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
            # Events change one state only (claimed → working); the move's compare-and-swap
            # on the stored state makes it a no-op for every later batch, without a read.
            source = TaskState.CLAIMED
            if run.state is RunState.RUNNING and (target := on_events(source)) is not None:
                await TaskRepository(conn).move(run.task_id, source, target, {"updated_at": now})
        await self.notifier.notify(f"run:{run_id}", f"task:{run.task_id}")
        return last

    async def complete(self, instance_id: str, run_id: str, result: CompleteIn) -> dict[str, Any]:
        """Record the run's result once; a repeated complete returns the recorded state."""
        now = self.clock.now()
        ended = Ended()
        async with self.db.write() as conn:
            run = await self._own_run(conn, instance_id, run_id)
            if run.state is not RunState.RUNNING:
                if result.events:  # a retried completion may still carry events we lack
                    await RunRepository(conn).add_events(run_id, _events(result), now)
                return {"state": run.state.value, "recorded": False}
            task = await TaskRepository(conn).get(run.task_id, for_update=True)
            if result.status == "succeeded":
                outcome = on_success(task, run.id) if task else Outcome(RunState.SUCCEEDED, None)
                state = await self._succeed(conn, run, task, outcome, result, now)
                if state is not None:
                    ended.runs.append(run)
            else:
                kind = reported_failure(
                    result.failure_kind, cancel_requested=bool(task and task.cancel_requested)
                )
                state = await self.fail(
                    conn,
                    run,
                    kind,
                    result.error or "",
                    now,
                    ended,
                    task=task,
                    usage=result.usage,
                    output=result.output,
                    events=_events(result),
                )
        await self.notifier.notify(*ended.channels())
        return {"state": (state or run.state).value, "recorded": state is not None}

    async def _succeed(
        self,
        conn: AsyncConnection,
        run: Run,
        task: Task | None,
        outcome: Outcome,
        result: CompleteIn,
        now: datetime,
    ) -> RunState | None:
        output = {"output": result.output}
        runs = RunRepository(conn)
        values = {"result": output, "usage": result.usage, "finished_at": now}
        if not await runs.finish(run.id, outcome.run, values):
            return None
        status = {"type": "status", "data": {"state": outcome.run.value}}
        await runs.add_events(run.id, [*_events(result), status], now)
        if task is not None and outcome.task is not None:
            await TaskRepository(conn).move(
                task.id, task.state, outcome.task,
                {"result": output, "failure_kind": None, "error": None, "finished_at": now,
                 "updated_at": now},
            )  # fmt: skip
        return outcome.run

    async def fail(
        self,
        conn: AsyncConnection,
        run: Run,
        kind: FailureKind,
        error: str,
        now: datetime,
        ended: Ended,
        *,
        task: Task | None = None,
        usage: dict[str, Any] | None = None,
        output: Any = None,
        events: list[dict[str, Any]] | None = None,
    ) -> RunState | None:
        """End a run as failed (or cancelled) and persist what the rules decide for its task.

        Returns the run's end state, or None if it had already ended."""
        if task is None:
            task = await TaskRepository(conn).get(run.task_id, for_update=True)
        candidates: list[str] = []
        if task is not None and task.current_run == run.id and would_retry(kind, task):
            candidates = await self._candidates(conn, task)
        outcome = (
            on_failure(kind, task, run.id, error, has_candidates=bool(candidates))
            if task is not None
            else Outcome(RunState.CANCELLED if kind is FailureKind.CANCELLED else RunState.FAILED,
                         None, kind, error)
        )  # fmt: skip
        runs = RunRepository(conn)
        values = {"failure_kind": kind.value, "error": error[:MAX_ERROR], "usage": usage,
                  "finished_at": now,
                  "result": {"output": output} if output is not None else None}  # fmt: skip
        if not await runs.finish(run.id, outcome.run, values):
            return None
        if run not in ended.runs:
            ended.runs.append(run)
        status = {"state": outcome.run.value, "failureKind": kind.value,
                  "error": error[:MAX_EVENT_ERROR]}  # fmt: skip
        await runs.add_events(run.id, [*(events or []), {"type": "status", "data": status}], now)
        if task is None or outcome.task is None:
            return outcome.run
        failure = outcome.failure or kind
        update: dict[str, Any] = {
            "updated_at": now,
            "failure_kind": failure.value,
            "error": (outcome.error or "")[:MAX_ERROR],
        }
        if outcome.requeue:
            update["current_run"] = None
            delay = requeue_delay(failure, task.attempts, task.backoff_seconds)
            not_before = now + timedelta(seconds=delay)
            await QueueRepository(conn, skip_locked=not self.db.is_sqlite).enqueue(
                task.seq, candidates, task.priority, not_before
            )
            ended.requeued_to.extend(candidates)
        if outcome.finishes_task:
            update["finished_at"] = now
        await TaskRepository(conn).move(task.id, task.state, outcome.task, update)
        return outcome.run

    async def _candidates(self, conn: AsyncConnection, task: Task) -> list[str]:
        resources = ResourceRepository(conn)
        if task.agent:
            record = await resources.get(
                ResourceKey("Agent", task.tenant, task.project, task.agent)
            )
            return [record.uid] if record else []
        records = await resources.list(
            "Agent", tenant=task.tenant, project=task.project,
            selector=parse_selector(task.selector), after=None, limit=1000,
        )  # fmt: skip
        return [r.uid for r in records]

    async def fail_lost(
        self, conn: AsyncConnection, runs: list[Run], reason: str, ended: Ended
    ) -> None:
        """The runner of these runs is gone or restarted: they are lost, their tasks retried."""
        now = self.clock.now()
        for run in runs:
            await self.fail(conn, run, FailureKind.RUNNER_LOST, reason, now, ended)

    async def fail_instance_runs(self, instance_id: str, reason: str) -> int:
        """The instance is gone: its running runs are lost and their tasks retried."""
        ended = Ended()
        async with self.db.write() as conn:
            running = await RunRepository(conn).running_on(instance_id)
            await self.fail_lost(conn, running, reason, ended)
        await self.notifier.notify(*ended.channels())
        return len(ended.runs)
