"""The control-plane side of the runner protocol (DESIGN.md §5) and the run reaper.

Runners pull: they claim runs with a long poll that a queued task answers at once (notifier),
post ordered events in idempotent batches, and complete runs. Every claimed run holds a lease
that heartbeats renew; the reaper fails runs whose lease ran out (``runner-lost``) or whose
deadline passed (``timeout``), and the task is retried per its policy. Every state change goes
through ``domain.lifecycle``; a result is recorded once per run and a task reaches ``done`` once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from clawfleet.core.clock import Clock
from clawfleet.core.errors import Conflict, Forbidden, NotFound
from clawfleet.domain.ids import new_run_id
from clawfleet.domain.lifecycle import (
    FailureKind,
    InstancePhase,
    RunState,
    TaskState,
    check_instance,
    check_run,
    check_task,
    retry_delay,
    task_state_after_failure,
)
from clawfleet.domain.resources import ResourceKey
from clawfleet.domain.selectors import parse_selector
from clawfleet.schemas.runner import CompleteIn, EventIn
from clawfleet.services import quotas
from clawfleet.services.context import Principal
from clawfleet.store.db import Database
from clawfleet.store.notify import Notifier
from clawfleet.store.repositories.instances import InstanceRepository
from clawfleet.store.repositories.resources import ResourceRepository
from clawfleet.store.repositories.runs import RunRepository
from clawfleet.store.repositories.tasks import QueueRepository, TaskRepository

CLAIMABLE = (InstancePhase.RUNNING.value,)


@dataclass(frozen=True)
class DispatchConfig:
    lease_seconds: float = 15.0
    heartbeat_seconds: float = 2.0
    # A run the runner does not report as active this long after its claim is lost.
    claim_grace_seconds: float = 5.0
    # How long past its deadline a run may stay before the reaper fails it itself.
    deadline_grace_seconds: float = 10.0


def _failure_kind(text: str | None) -> FailureKind:
    try:
        return FailureKind(text or FailureKind.AGENT_ERROR.value)
    except ValueError:
        return FailureKind.AGENT_ERROR


class Dispatcher:
    def __init__(
        self, db: Database, clock: Clock, notifier: Notifier, config: DispatchConfig | None = None
    ) -> None:
        self.db = db
        self.clock = clock
        self.notifier = notifier
        self.config = config or DispatchConfig()
        self._agent_of: dict[str, str] = {}  # instance id → agent uid (never changes)

    # -- access --------------------------------------------------------------------------------

    @staticmethod
    def check_runner(principal: Principal, instance_id: str) -> None:
        """A runner token is good for its own instance only."""
        if principal.is_admin:
            return
        if principal.role != "runner" or principal.name != f"instance:{instance_id}":
            raise Forbidden("this token may not act for that instance")

    async def _instance(self, conn: AsyncConnection, instance_id: str) -> dict[str, Any]:
        row = await InstanceRepository(conn).get(instance_id)
        if row is None:
            raise NotFound(f"instance {instance_id!r} not found")
        return row

    # -- register / heartbeat ----------------------------------------------------------------

    async def register(self, instance_id: str) -> dict[str, Any]:
        """A (re)started runner announces itself; runs it held before are lost."""
        now = self.clock.now()
        async with self.db.write() as conn:
            instance = await self._instance(conn, instance_id)
            phase = InstancePhase(instance["phase"])
            if phase in (InstancePhase.STOPPING, InstancePhase.STOPPED):
                raise Conflict(
                    f"instance {instance['name']} is {phase.value}", code="instance-stopped"
                )
            check_instance(phase, InstancePhase.RUNNING)
            await InstanceRepository(conn).update(
                instance_id,
                {"phase": InstancePhase.RUNNING.value, "liveness": "starting",
                 "heartbeat_at": now, "updated_at": now},
            )  # fmt: skip
            lost = await RunRepository(conn).running_on(instance_id)
            for run in lost:
                await self._fail(conn, run, FailureKind.RUNNER_LOST, "the runner restarted", now)
            agent = await ResourceRepository(conn).get(
                ResourceKey("Agent", instance["tenant"], instance["project"], instance["agent"])
            )
        await self._publish_requeued(lost)
        if agent is None:
            raise NotFound(f"agent {instance['agent']!r} of this instance no longer exists")
        spec = agent.spec
        return {
            "instance": {"id": instance_id, "name": instance["name"], "agent": instance["agent"],
                         "tenant": instance["tenant"], "project": instance["project"]},
            "bundle": {
                "adapter": spec.get("adapter"),
                "command": spec.get("command") or [],
                "config": spec.get("config") or {},
                "envNames": sorted([*(spec.get("env") or {}), *(spec.get("secretEnv") or {})]),
                "secretEnvNames": sorted(spec.get("secretEnv") or {}),
                "instructions": spec.get("instructions"),
            },
            "concurrency": int(spec.get("concurrency") or 1),
            "heartbeatSeconds": self.config.heartbeat_seconds,
            "leaseSeconds": self.config.lease_seconds,
        }  # fmt: skip

    async def heartbeat(
        self, instance_id: str, liveness: str, active_runs: list[str], acked: list[int]
    ) -> dict[str, Any]:
        now = self.clock.now()
        lost: list[dict[str, Any]] = []
        async with self.db.write() as conn:
            instance = await self._instance(conn, instance_id)
            phase = InstancePhase(instance["phase"])
            values: dict[str, Any] = {"heartbeat_at": now, "liveness": liveness, "updated_at": now}
            if phase in (InstancePhase.LOST, InstancePhase.STARTING):
                values["phase"] = check_instance(phase, InstancePhase.RUNNING).value
            await InstanceRepository(conn).update(instance_id, values)
            runs = RunRepository(conn)
            until = now + timedelta(seconds=self.config.lease_seconds)
            await runs.renew_leases(instance_id, active_runs, until)
            grace = now - timedelta(seconds=self.config.claim_grace_seconds)
            for run in await runs.running_on(instance_id):
                if run["id"] not in active_runs and run["started_at"] < grace:
                    await self._fail(
                        conn, run, FailureKind.RUNNER_LOST, "the runner no longer has this run", now
                    )
                    lost.append(run)
            await runs.ack_commands(instance_id, acked, now)
            commands = await runs.pending_commands(instance_id)
        await self._publish_requeued(lost)
        return {
            "commands": [_command(c) for c in commands],
            "stop": bool(instance["stop_requested"]) or phase is InstancePhase.STOPPING,
        }

    async def wait_commands(self, instance_id: str, wait: float) -> list[dict[str, Any]]:
        """Unacknowledged commands for an instance; waits up to ``wait`` s for the first one."""
        deadline = self.clock.monotonic() + wait
        with self.notifier.subscribe(f"instance:{instance_id}") as woken:
            while True:
                async with self.db.read() as conn:
                    await self._instance(conn, instance_id)
                    commands = await RunRepository(conn).pending_commands(instance_id)
                remaining = deadline - self.clock.monotonic()
                if commands or remaining <= 0 or self.notifier.closing:
                    return [_command(c) for c in commands]
                await woken.wait(remaining)

    async def ack_commands(self, instance_id: str, ids: list[int]) -> None:
        async with self.db.write() as conn:
            await RunRepository(conn).ack_commands(instance_id, ids, self.clock.now())

    # -- claim ---------------------------------------------------------------------------------

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
            instance = await self._instance(conn, instance_id)
            if instance["phase"] not in CLAIMABLE or instance["stop_requested"]:
                return [], None, None
            queue = QueueRepository(conn, skip_locked=not self.db.is_sqlite)
            agent_uid = instance["agent_uid"]
            max_runs = await self._runs_allowed(conn, instance, max_runs)
            if max_runs == 0:  # at the concurrentRuns quota: look again shortly
                return [], agent_uid, now + timedelta(seconds=1)
            seqs = await queue.pick(agent_uid, now, max_runs)
            if not seqs:
                return [], agent_uid, await queue.next_ready_at(agent_uid, now)
            await queue.remove(seqs)
            tasks = TaskRepository(conn)
            lease = now + timedelta(seconds=self.config.lease_seconds)
            rows, claimed = [], []
            order = {seq: index for index, seq in enumerate(seqs)}
            picked = sorted(await tasks.get_many(seqs), key=lambda t: order[t["seq"]])
            for task in picked:
                if task["state"] != TaskState.PENDING.value:
                    continue
                run_id = new_run_id()
                attempt = task["attempts"] + 1
                check_task(TaskState.PENDING, TaskState.CLAIMED)
                moved = await tasks.update(
                    task["id"],
                    {"state": TaskState.CLAIMED.value, "attempts": attempt,
                     "current_run": run_id, "updated_at": now},
                    expected_state=TaskState.PENDING.value,
                )  # fmt: skip
                if not moved:
                    continue
                timeout = task["timeout_seconds"]
                rows.append({
                    "id": run_id, "task_id": task["id"], "attempt": attempt,
                    "tenant": task["tenant"], "project": task["project"],
                    "agent": instance["agent"], "instance_id": instance_id,
                    "state": RunState.RUNNING.value, "last_seq": 1,
                    "queued_at": task["updated_at"], "started_at": now, "lease_expires_at": lease,
                    "deadline_at": now + timedelta(seconds=timeout) if timeout else None,
                })  # fmt: skip
                claimed.append({
                    "id": run_id, "taskId": task["id"], "attempt": attempt,
                    "prompt": task["prompt"], "data": task["data"], "timeoutSeconds": timeout,
                })  # fmt: skip
            runs = RunRepository(conn)
            await runs.insert_many(rows)
            # Each new run's first event (seq 1, counted in last_seq above), in one statement.
            name = instance["name"]
            await runs.insert_events([
                {"run_id": row["id"], "seq": 1, "runner_seq": None, "type": "status",
                 "created_at": now,
                 "data": {"state": "running", "instance": name, "attempt": row["attempt"]}}
                for row in rows
            ])  # fmt: skip
        return claimed, agent_uid, None

    async def _runs_allowed(
        self, conn: AsyncConnection, instance: dict[str, Any], wanted: int
    ) -> int:
        """How many more runs the tenant's and project's concurrentRuns quotas allow."""
        allowed = wanted
        for project in (None, instance["project"]):
            limit = (await quotas.limits(conn, instance["tenant"], project)).get("concurrentRuns")
            if limit is not None:
                running = await RunRepository(conn).count_running(instance["tenant"], project)
                allowed = min(allowed, max(0, int(limit) - running))
        return allowed

    # -- events and completion -----------------------------------------------------------------

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
        requeued: list[dict[str, Any]] = []
        async with self.db.write() as conn:
            run = await self._own_run(conn, instance_id, run_id)
            events = [{"runner_seq": e.seq, "type": e.type, "data": e.data} for e in result.events]
            if run["state"] != RunState.RUNNING.value:
                if events:  # a retried completion may still carry events we lack
                    await RunRepository(conn).add_events(run_id, events, now)
                return {"state": run["state"], "recorded": False}
            if result.status == "succeeded":
                await self._succeed(conn, run, result, now, events)
                state = RunState.SUCCEEDED.value
            else:
                kind = _failure_kind(result.failure_kind)
                task = await TaskRepository(conn).get(run["task_id"])
                if kind is FailureKind.CANCELLED and task and not task["cancel_requested"]:
                    kind = FailureKind.AGENT_ERROR  # the agent cancelled itself; not the user
                await self._fail(
                    conn,
                    run,
                    kind,
                    result.error or "",
                    now,
                    usage=result.usage,
                    output=result.output,
                    events=events,
                )
                requeued.append(run)
                state = (
                    RunState.CANCELLED.value
                    if kind is FailureKind.CANCELLED
                    else RunState.FAILED.value
                )
        await self._publish_requeued(requeued)
        await self.notifier.notify(f"run:{run_id}", f"task:{run['task_id']}")
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

    async def _fail(
        self,
        conn: AsyncConnection,
        run: dict[str, Any],
        kind: FailureKind,
        error: str,
        now: datetime,
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
                run["_requeued_to"] = targets
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

    async def _publish_requeued(self, runs: list[dict[str, Any]]) -> None:
        channels = sorted({f"agent:{uid}" for run in runs for uid in run.get("_requeued_to", [])})
        channels += [f"run:{run['id']}" for run in runs]
        channels += [f"task:{run['task_id']}" for run in runs]
        await self.notifier.notify(*channels)

    # -- for controllers -----------------------------------------------------------------------

    async def fail_instance_runs(self, instance_id: str, reason: str) -> int:
        """The instance is gone: its running runs are lost and their tasks retried."""
        now = self.clock.now()
        async with self.db.write() as conn:
            lost = await RunRepository(conn).running_on(instance_id)
            for run in lost:
                await self._fail(conn, run, FailureKind.RUNNER_LOST, reason, now)
        await self._publish_requeued(lost)
        return len(lost)

    async def load(self) -> tuple[dict[str, int], dict[str, int]]:
        """(queued tasks per agent uid, running runs per instance id)."""
        async with self.db.read() as conn:
            queued = await QueueRepository(conn, skip_locked=False).pending_by_agent()
            running = await RunRepository(conn).running_by_instance()
        return queued, running

    # -- reaper --------------------------------------------------------------------------------

    async def reap(self) -> dict[str, int]:
        """Fail runs whose lease expired or whose deadline passed long ago; cancel overdue runs."""
        now = self.clock.now()
        failed: list[dict[str, Any]] = []
        cancels: list[str] = []
        async with self.db.write() as conn:
            runs = RunRepository(conn)
            for run in await runs.expired(now):
                await self._fail(
                    conn, run, FailureKind.RUNNER_LOST, "the runner stopped renewing its lease", now
                )
                failed.append(run)
            grace = timedelta(seconds=self.config.deadline_grace_seconds)
            for run in await runs.overdue(now):
                if run["deadline_at"] + grace < now:
                    await self._fail(
                        conn, run, FailureKind.TIMEOUT, "the run exceeded its timeout", now
                    )
                    failed.append(run)
                else:
                    pending = await runs.pending_commands(run["instance_id"])
                    if not any(c["run_id"] == run["id"] and c["type"] == "cancel" for c in pending):
                        await runs.add_command(
                            run["instance_id"], run["id"], "cancel", {"reason": "timeout"}, now
                        )
                        cancels.append(run["instance_id"])
        await self._publish_requeued(failed)
        if cancels:
            await self.notifier.notify(*(f"instance:{i}" for i in cancels))
        return {"lost": len(failed)}

    async def extend_leases(self) -> int:
        """After a control-plane restart, give runners one lease period to reconnect."""
        until = self.clock.now() + timedelta(seconds=self.config.lease_seconds)
        async with self.db.write() as conn:
            return await RunRepository(conn).extend_all_leases(until)


def _command(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "runId": row["run_id"], "type": row["type"], "payload": row["payload"]}
