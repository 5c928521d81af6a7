"""The control-plane side of the runner protocol (DESIGN.md §5): register, heartbeat, commands.

A runner token is good for its own instance only. A (re)registering runner gets its bundle and
loses the runs it held before; heartbeats renew the leases of the runs the runner reports and
fail the ones it no longer has; commands (cancel, steer) wait in ``run_commands`` until the
runner acknowledges them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from clawfleet.core.clock import Clock
from clawfleet.core.errors import Forbidden, InstanceStopped, NotFound, TemporaryError
from clawfleet.domain.instances import Instance
from clawfleet.domain.lifecycle import InstancePhase, StopRequest
from clawfleet.domain.resources import ResourceKey
from clawfleet.domain.tasks import RunCommand
from clawfleet.schemas.agents import read_agent_spec
from clawfleet.services.context import Principal
from clawfleet.services.dispatch_config import DispatchConfig
from clawfleet.services.run_outcomes import Ended, RunOutcomes
from clawfleet.store.db import Database
from clawfleet.store.notify import Notifier
from clawfleet.store.repositories.instances import InstanceRepository
from clawfleet.store.repositories.resources import ResourceRepository
from clawfleet.store.repositories.runs import RunRepository


def check_runner(principal: Principal, instance_id: str) -> None:
    """A runner token is good for its own instance only."""
    if principal.is_admin:
        return
    if principal.role != "runner" or principal.name != f"instance:{instance_id}":
        raise Forbidden("this token may not act for that instance")


async def _instance(
    conn: AsyncConnection, instance_id: str, *, for_update: bool = False
) -> Instance:
    instance = await InstanceRepository(conn).get(instance_id, for_update=for_update)
    if instance is None:
        raise NotFound(f"instance {instance_id!r} not found")
    return instance


async def _move_to_running(
    conn: AsyncConnection, instance: Instance, values: dict[str, Any]
) -> None:
    # The row is locked (read for update), so the compare-and-swap can only fail if the
    # lock is not taken (SQLite serializes writers instead); either way, a retry re-reads.
    moved = await InstanceRepository(conn).move_instance(
        instance.id, instance.phase, InstancePhase.RUNNING, values
    )
    if not moved:
        raise TemporaryError(f"instance {instance.name} changed meanwhile; retry")


class RunnerProtocol:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        notifier: Notifier,
        outcomes: RunOutcomes,
        config: DispatchConfig,
    ) -> None:
        self.db = db
        self.clock = clock
        self.notifier = notifier
        self.outcomes = outcomes
        self.config = config

    async def register(self, instance_id: str) -> dict[str, Any]:
        """A (re)started runner announces itself; runs it held before are lost. The answer has
        the agent's current revision (its digest, the one the agent controller compares with
        the instance's) and its bundle."""
        now = self.clock.now()
        ended = Ended()
        async with self.db.write() as conn:
            instance = await _instance(conn, instance_id, for_update=True)
            phase = instance.phase
            if phase in (InstancePhase.STOPPING, InstancePhase.STOPPED):
                raise InstanceStopped(f"instance {instance.name} is {phase.value}")
            await _move_to_running(
                conn, instance, {"liveness": "starting", "heartbeat_at": now, "updated_at": now}
            )
            lost = await RunRepository(conn).running_on(instance_id)
            await self.outcomes.fail_lost(conn, lost, "the runner restarted", ended)
            agent = await ResourceRepository(conn).get(
                ResourceKey("Agent", instance.tenant, instance.project, instance.agent)
            )
        await self.notifier.notify(*ended.channels())
        if agent is None:
            raise NotFound(f"agent {instance.agent!r} of this instance no longer exists")
        spec = read_agent_spec(agent)
        revision = spec.revision()
        return {
            "instance": {"id": instance_id, "name": instance.name, "agent": instance.agent,
                         "tenant": instance.tenant, "project": instance.project},
            "revision": revision.digest,
            "bundle": revision.bundle(),
            "concurrency": spec.concurrency,
            "heartbeatSeconds": self.config.heartbeat_seconds,
            "leaseSeconds": self.config.lease_seconds,
        }  # fmt: skip

    async def heartbeat(
        self, instance_id: str, liveness: str, active_runs: list[str], acked: list[int]
    ) -> dict[str, Any]:
        now = self.clock.now()
        ended = Ended()
        async with self.db.write() as conn:
            instance = await _instance(conn, instance_id, for_update=True)
            phase = instance.phase
            # A heartbeat is not a change of the instance: `updated_at` keeps the time of the last
            # one (a stopping instance's drain deadline runs from it, whatever the runner says).
            values: dict[str, Any] = {"heartbeat_at": now, "liveness": liveness}
            if phase in (InstancePhase.LOST, InstancePhase.STARTING):
                await _move_to_running(conn, instance, {**values, "updated_at": now})
            else:
                await InstanceRepository(conn).update(instance.id, values)
            runs = RunRepository(conn)
            until = now + timedelta(seconds=self.config.lease_seconds)
            await runs.renew_leases(instance_id, active_runs, until)
            grace = now - timedelta(seconds=self.config.claim_grace_seconds)
            gone = [
                run
                for run in await runs.running_on(instance_id)
                if run.id not in active_runs and run.started_at < grace
            ]
            await self.outcomes.fail_lost(conn, gone, "the runner no longer has this run", ended)
            await runs.ack_commands(instance_id, acked, now)
            commands = await runs.pending_commands(instance_id)
        await self.notifier.notify(*ended.channels())
        return {
            "commands": [_command(c) for c in commands],
            "stop": instance.stop_requested is not StopRequest.NONE
            or phase is InstancePhase.STOPPING,
        }

    async def wait_commands(self, instance_id: str, wait: float) -> list[dict[str, Any]]:
        """Unacknowledged commands for an instance; waits up to ``wait`` s for the first one."""
        deadline = self.clock.monotonic() + wait
        with self.notifier.subscribe(f"instance:{instance_id}") as woken:
            while True:
                async with self.db.read() as conn:
                    await _instance(conn, instance_id)
                    commands = await RunRepository(conn).pending_commands(instance_id)
                remaining = deadline - self.clock.monotonic()
                if commands or remaining <= 0 or self.notifier.closing:
                    return [_command(c) for c in commands]
                await woken.wait(remaining)

    async def ack_commands(self, instance_id: str, ids: list[int]) -> None:
        async with self.db.write() as conn:
            await RunRepository(conn).ack_commands(instance_id, ids, self.clock.now())


def _command(command: RunCommand) -> dict[str, Any]:
    """The wire form (``schemas.runner.CommandOut``), built by hand: heartbeats are hot."""
    return {"id": command.id, "runId": command.run_id, "type": command.type,
            "payload": command.payload}  # fmt: skip
