"""Claims: a runner's long poll for runs, answered at once when a task is queued for its agent.

A claim picks queue rows for the instance's agent (priority, then FIFO; SKIP LOCKED on
PostgreSQL), moves each task from pending to claimed with a compare-and-swap, and starts a run
with its lease. A runner that finds nothing queues for a turn on ``agent:<uid>``: each wake-up
hands one turn to one waiting runner, so a new task wakes one runner, not all of them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from clawfleet.core.clock import Clock
from clawfleet.core.errors import NotFound
from clawfleet.domain.ids import new_run_id
from clawfleet.domain.instances import Instance
from clawfleet.domain.lifecycle import InstancePhase, RunState, StopRequest, TaskState, on_claim
from clawfleet.domain.limits import MAX_TASK_TIMEOUT_SECONDS, clamp_seconds, deadline_after
from clawfleet.services import quotas
from clawfleet.services.dispatch_config import DispatchConfig
from clawfleet.store.db import Database
from clawfleet.store.notify import Notifier
from clawfleet.store.repositories.instances import InstanceRepository
from clawfleet.store.repositories.runs import RunRepository
from clawfleet.store.repositories.tasks import QueueRepository, TaskRepository

CLAIMABLE = (InstancePhase.RUNNING.value,)


class Claims:
    def __init__(
        self, db: Database, clock: Clock, notifier: Notifier, config: DispatchConfig
    ) -> None:
        self.db = db
        self.clock = clock
        self.notifier = notifier
        self.config = config
        self._agent_of: dict[str, str] = {}  # instance id → agent uid (never changes)

    async def claim(self, instance_id: str, max_runs: int, wait: float) -> list[dict[str, Any]]:
        """Runs for this instance: at once if any task is queued, else when one is, or []."""
        deadline = self.clock.monotonic() + wait
        with self.notifier.subscribe(f"instance:{instance_id}") as commands:
            while True:
                # Queue for a wake-up before looking, so a task queued in between is not missed.
                agent_uid = self._agent_of.get(instance_id)
                channel = f"agent:{agent_uid}"
                turn = self.notifier.turn(channel) if agent_uid else None
                try:
                    claimed, agent_uid, next_ready = await self._claim_once(instance_id, max_runs)
                    remaining = deadline - self.clock.monotonic()
                    if claimed:
                        await self.notifier.notify(*(f"task:{run['taskId']}" for run in claimed))
                    if claimed or remaining <= 0 or self.notifier.closing:
                        return claimed
                    if agent_uid is None:
                        # Not claimable (stopping, or not registered): hold the poll instead of
                        # letting the runner spin; a command or the heartbeat's stop reaches it.
                        await commands.wait(remaining)
                        return []
                    if turn is None:  # first poll of this instance: learn its agent, look again
                        self._agent_of[instance_id] = agent_uid
                        continue
                    if next_ready is not None:
                        until = (next_ready - self.clock.now()).total_seconds()
                        remaining = min(remaining, max(0.0, until))
                    await self.notifier.wait_turn(turn, commands, remaining)
                finally:
                    if turn is not None:
                        self.notifier.leave(channel, turn)

    async def _claim_once(
        self, instance_id: str, max_runs: int
    ) -> tuple[list[dict[str, Any]], str | None, datetime | None]:
        now = self.clock.now()
        async with self.db.write() as conn:
            instance = await InstanceRepository(conn).get(instance_id)
            if instance is None:
                raise NotFound(f"instance {instance_id!r} not found")
            if instance.phase not in CLAIMABLE or instance.stop_requested != StopRequest.NONE:
                return [], None, None
            queue = QueueRepository(conn, skip_locked=not self.db.is_sqlite)
            agent_uid = instance.agent_uid
            max_runs = await self._runs_allowed(conn, instance, max_runs)
            if max_runs == 0:  # at the concurrentRuns quota: look again shortly
                return [], agent_uid, now + timedelta(seconds=1)
            seqs = await queue.pick(agent_uid, now, max_runs)
            if not seqs:
                return [], agent_uid, await queue.next_ready_at(agent_uid, now)
            await queue.remove(seqs)
            tasks = TaskRepository(conn)
            lease = now + timedelta(seconds=self.config.lease_seconds)
            rows: list[dict[str, Any]] = []
            claimed: list[dict[str, Any]] = []
            order = {seq: index for index, seq in enumerate(seqs)}
            picked = sorted(await tasks.get_many(seqs), key=lambda t: order[t.seq])
            for task in picked:
                if task.state is not TaskState.PENDING:
                    continue
                run_id = new_run_id()
                attempt = task.attempts + 1
                moved = await tasks.move(
                    task.id, task.state, on_claim(task),
                    {"attempts": attempt, "current_run": run_id, "updated_at": now},
                )  # fmt: skip
                if not moved:
                    continue
                # Clamped: a timeout stored before it had a maximum must not fail every claim.
                timeout = clamp_seconds(task.timeout_seconds, MAX_TASK_TIMEOUT_SECONDS)
                rows.append({
                    "id": run_id, "task_id": task.id, "task_name": task.name, "attempt": attempt,
                    "tenant": task.tenant, "project": task.project,
                    "agent": instance.agent, "instance_id": instance_id,
                    "state": RunState.RUNNING.value, "last_seq": 1,
                    "queued_at": task.updated_at, "started_at": now, "lease_expires_at": lease,
                    "deadline_at": deadline_after(now, timeout),
                })  # fmt: skip
                claimed.append({
                    "id": run_id, "taskId": task.id, "attempt": attempt,
                    "prompt": task.prompt, "data": task.data, "timeoutSeconds": timeout,
                })  # fmt: skip
            runs = RunRepository(conn)
            await runs.insert_many(rows)
            # Each new run's first event (seq 1, counted in last_seq above), in one statement.
            name = instance.name
            await runs.insert_events([
                {"run_id": row["id"], "seq": 1, "runner_seq": None, "type": "status",
                 "created_at": now,
                 "data": {"state": "running", "instance": name, "attempt": row["attempt"]}}
                for row in rows
            ])  # fmt: skip
        return claimed, agent_uid, None

    async def _runs_allowed(self, conn: AsyncConnection, instance: Instance, wanted: int) -> int:
        """How many more runs the tenant's and project's concurrentRuns quotas allow."""
        allowed = wanted
        for project in (None, instance.project):
            limit = (await quotas.limits(conn, instance.tenant, project)).get("concurrentRuns")
            if limit is not None:
                running = await RunRepository(conn).count_running(instance.tenant, project)
                allowed = min(allowed, max(0, int(limit) - running))
        return allowed
