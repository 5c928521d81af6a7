"""The agent controller: keeps each Agent's instances as declared.

Per pass it reads every Agent, its Instances and the work waiting for it. For each agent it
decides whether the agent sleeps (``idleTimeout``) or wakes (work arrived), how many instances
it wants, and then, instance by instance, observes (the runtime's report, the runs it holds),
asks the pure ``instance_plan.plan_instance`` what to do and does it: launch, relaunch after a
crash-loop backoff, replace an instance that went silent (Lost) or runs another revision (only
while idle), drain and stop. Then it launches missing instances, asks extra ones to stop and
writes the agent's status. New instances are paced: at most ``max_starting`` are launched and
not yet registered at once, across all agents, and the status shows how far an agent got.
Instances of deleted agents are stopped. All of it is idempotent,
and it re-adopts live instances after a control-plane restart because it only ever trusts
what the runtime reports for a stored handle.

A stopped instance is kept for ``stopped_retention`` (an hour by default), so that
``clawfleet logs instance/NAME`` can still show why it stopped; then the controller removes
what its runtime keeps (work dir, logs) and deletes its row and events. What a runtime runs or
keeps for an instance the store does not know at all (an orphan) is stopped and removed at the
first pass.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta

from clawfleet.controllers.base import Controller
from clawfleet.controllers.config import AgentControllerConfig
from clawfleet.controllers.instance_executor import InstanceExecutor, handle_of
from clawfleet.controllers.instance_plan import AgentTarget, Observed, plan_instance
from clawfleet.core.clock import Clock
from clawfleet.core.errors import ClawfleetError, PermanentError
from clawfleet.domain.instances import Instance, InstanceId
from clawfleet.domain.lifecycle import (
    AgentState,
    InstancePhase,
    StopRequest,
    agent_phase,
    desired_instances,
)
from clawfleet.domain.limits import MAX_IDLE_TIMEOUT_SECONDS
from clawfleet.domain.resources import ResourceRecord
from clawfleet.runtimes.base import INSTANCE_LABEL, Runtime, State
from clawfleet.schemas.agents import AgentSpec, AgentStatus, read_agent_spec, read_agent_status
from clawfleet.schemas.base import parse_duration
from clawfleet.services.agents import AgentService
from clawfleet.services.dispatch import Dispatcher
from clawfleet.services.instances import InstanceService
from clawfleet.services.tokens import TokenService
from clawfleet.store.db import Database
from clawfleet.store.notify import Notifier

__all__ = ["AgentController", "AgentControllerConfig", "last_busy_at"]

log = logging.getLogger(__name__)

# While an agent stays busy, status.lastBusyAt is refreshed this often, not on every pass (each
# write bumps the agent's resourceVersion); the exact time is written once it turns idle.
LAST_BUSY_REFRESH = 30.0
PRUNE_EVERY = 60.0  # seconds between looks for stopped instances past their retention


def last_busy_at(
    stored: datetime | None, seen: datetime | None, *, busy: bool, now: datetime
) -> datetime:
    """The lastBusyAt to record: ``now`` while busy (refreshed every LAST_BUSY_REFRESH s),
    else the later of the stored time and the last pass this process saw it busy (``seen``);
    an agent never seen busy counts as busy when first seen."""
    if busy:
        fresh = stored is not None and (now - stored).total_seconds() < LAST_BUSY_REFRESH
        return stored if fresh and stored is not None else now
    known = [when for when in (stored, seen) if when is not None]
    return max(known) if known else now


class AgentController(Controller):
    name = "agents"
    interval = 1.0
    wake_channels = ("reconcile",)

    def __init__(
        self,
        db: Database,
        clock: Clock,
        notifier: Notifier,
        *,
        agents: AgentService,
        instances: InstanceService,
        tokens: TokenService,
        dispatcher: Dispatcher,
        runtimes: Mapping[str, Runtime],
        config: AgentControllerConfig,
    ) -> None:
        super().__init__(db, clock, notifier)
        self.agents = agents
        self.instances = instances
        self.tokens = tokens
        self.dispatcher = dispatcher
        self.runtimes = runtimes
        self.config = config
        self._busy_seen: dict[str, datetime] = {}  # agent uid -> last pass it had work
        self.collected_orphans = False
        self._prune_at = 0.0  # monotonic time of the next look for stopped instances
        self._launch_room = 0  # new instances this pass may still launch (``max_starting``)
        self.executor = InstanceExecutor(
            clock, notifier, agents=agents, instances=instances, tokens=tokens,
            dispatcher=dispatcher, runtimes=runtimes, config=config,
        )  # fmt: skip

    async def reconcile_once(self) -> None:
        agents = await self.agents.all_agents()
        instances = await self.instances.all()
        queued, running = await self.dispatcher.load()
        known = {agent.uid for agent in agents}
        by_agent: dict[str, list[Instance]] = {}
        for instance in instances:
            if instance.agent_uid in known:
                by_agent.setdefault(instance.agent_uid, []).append(instance)
            else:
                await self.executor.stop(instance, "AgentDeleted")
        self._busy_seen = {uid: t for uid, t in self._busy_seen.items() if uid in known}
        starting = sum(
            i.phase in (InstancePhase.PENDING, InstancePhase.STARTING) for i in instances
        )
        self._launch_room = max(0, self.config.max_starting - starting)
        if not self.collected_orphans:
            await self._collect_orphans(await self.instances.known_ids())

        async def reconcile(agent: ResourceRecord) -> None:
            await self._reconcile_agent(agent, by_agent.get(agent.uid, []), queued, running)

        await self.reconcile_each(agents, reconcile)
        await self._prune_stopped()

    async def mark_failed(self, record: ResourceRecord, message: str) -> None:
        status = read_agent_status(record).failed(message, record.generation)
        await self.agents.set_status(record, status.to_doc())

    async def _collect_orphans(self, known_ids: set[InstanceId]) -> None:
        """Stop and remove what a runtime runs or keeps for instances the store does not know
        (their rows are gone, so nothing could read their logs)."""
        for runtime in self.runtimes.values():
            for handle in await runtime.list_owned():
                if handle.labels.get(INSTANCE_LABEL, handle.instance_id) in known_ids:
                    continue
                log.info("removing orphaned instance %s", handle.instance_id)
                if (await runtime.inspect(handle)).state is State.RUNNING:
                    await runtime.stop(handle, self.config.stop_grace)
                await runtime.remove(handle)
        self.collected_orphans = True

    async def _prune_stopped(self) -> None:
        """Forget instances stopped more than ``stopped_retention`` ago: what their runtime
        keeps, then their rows. One that cannot be removed now is tried again later."""
        if self.clock.monotonic() < self._prune_at:
            return
        self._prune_at = self.clock.monotonic() + PRUNE_EVERY
        cutoff = self.clock.now() - timedelta(seconds=self.config.stopped_retention)
        for instance in await self.instances.stopped_before(cutoff):
            handle = handle_of(instance)
            runtime = self.runtimes.get(instance.runtime)
            try:
                if handle is not None and runtime is not None:
                    await runtime.remove(handle)
                await self.instances.forget(instance)
            except ClawfleetError as exc:
                log.warning("cannot remove stopped instance %s: %s", instance.name, exc.message)

    # -- one agent ---------------------------------------------------------------------------

    async def _reconcile_agent(
        self,
        agent: ResourceRecord,
        instances: list[Instance],
        queued: Mapping[str, int],
        running: Mapping[str, int],
    ) -> None:
        now = self.clock.now()
        spec = read_agent_spec(agent)
        status = read_agent_status(agent)
        waiting = queued.get(agent.uid, 0)
        busy = waiting > 0 or any(running.get(instance.id, 0) for instance in instances)
        if busy:
            self._busy_seen[agent.uid] = now
        last_busy = last_busy_at(
            status.last_busy_at, self._busy_seen.get(agent.uid), busy=busy, now=now
        )
        idle_for = (now - last_busy).total_seconds()
        asleep = await self._sleep_or_wake(agent, spec, status, waiting, busy, idle_for)
        desired = desired_instances(spec.state, spec.replicas, asleep=asleep)
        runtime = self.runtimes.get(spec.runtime)
        target = AgentTarget(spec.revision().digest, runtime.name if runtime else None)
        live: list[Instance] = []
        for instance in instances:
            observed = Observed(await self.executor.inspect(instance), running.get(instance.id, 0))
            action = plan_instance(instance, observed, target, now, self.config)
            kept = await self.executor.execute(agent, spec, instance, action)
            if kept is not None:
                live.append(kept)
        if runtime is None:
            raise PermanentError(
                f"runtime {spec.runtime!r} is not available on this control plane; "
                f"use one of {sorted(self.runtimes)} in spec.runtime"
            )
        active = [i for i in live if i.stop_requested is not StopRequest.STOP]
        if len(active) < desired:
            # Paced: the rest come on later passes, as launched ones register.
            launches = min(desired - len(active), self._launch_room)
            self._launch_room -= launches
            for _ in range(launches):
                created = await self.instances.create(agent, runtime.name)
                live.append(await self.executor.launch(agent, spec, created))
        elif len(active) > desired:
            extra = sorted(active, key=lambda i: (running.get(i.id, 0), i.created_at))
            for instance in extra[: len(active) - desired]:
                live = [
                    i if i.id != instance.id else await self.executor.request_stop(i) for i in live
                ]
        await self._write_status(agent, spec, live, desired, asleep, last_busy)

    async def _sleep_or_wake(
        self,
        agent: ResourceRecord,
        spec: AgentSpec,
        status: AgentStatus,
        waiting: int,
        busy: bool,
        idle_for: float,
    ) -> bool:
        """Whether the agent is asleep from now on; records Woke and Slept events."""
        if spec.state is AgentState.STOPPED:
            return False
        was_asleep = status.asleep if status.asleep is not None else (
            spec.state is AgentState.SLEEPING
        )  # fmt: skip
        if spec.idle_timeout:
            idle_limit: float | None = float(
                parse_duration(spec.idle_timeout, MAX_IDLE_TIMEOUT_SECONDS)
            )
        else:
            idle_limit = self.config.sleeping_idle if spec.state is AgentState.SLEEPING else None
        if was_asleep and busy:
            await self.instances.agent_event(agent, "Woke", f"{waiting} task(s) waiting")
            return False
        if not was_asleep and not busy and idle_limit is not None and idle_for >= idle_limit:
            await self.instances.agent_event(agent, "Slept", f"idle for {int(idle_for)}s")
            return True
        return was_asleep

    async def _write_status(
        self,
        agent: ResourceRecord,
        spec: AgentSpec,
        live: list[Instance],
        desired: int,
        asleep: bool,
        last_busy: datetime,
    ) -> None:
        fresh = self.clock.now() - timedelta(seconds=self.config.lost_after)
        ready = [
            i for i in live
            if i.phase is InstancePhase.RUNNING and i.heartbeat_at and i.heartbeat_at >= fresh
        ]  # fmt: skip
        crash = [i for i in live if i.phase is InstancePhase.CRASH_LOOP]
        phase = agent_phase(
            spec.state, asleep=asleep, degraded=bool(crash), ready=len(ready), desired=desired
        )
        status = AgentStatus(
            phase=phase,
            replicas=desired,
            ready_replicas=len(ready),
            instances=len(live),
            restarts=sum(i.restarts for i in live),
            asleep=asleep,
            last_error=next((i.last_error for i in crash if i.last_error), None),
            observed_generation=agent.generation,
            last_busy_at=last_busy,
        )
        await self.agents.set_status(agent, status.to_doc())
