"""The agent controller: keeps each Agent's instances as declared.

Per pass it reads every Agent, its Instances and the work waiting for it, then: launches missing
instances, stops extra ones (they drain first), restarts crashed ones with exponential backoff
(CrashLoop in status), replaces instances whose heartbeats stopped (Lost), replaces idle
instances whose revision (what they run: ``domain.revisions``) is not the agent's, wakes
sleeping agents that have work and puts idle ones to sleep. All of it is idempotent, and it
re-adopts live instances after a control-plane restart because it only ever trusts what the
runtime reports for a stored handle.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from clawfleet.controllers.base import Controller
from clawfleet.core.clock import Clock
from clawfleet.core.errors import ClawfleetError, PermanentError
from clawfleet.domain.instances import Instance
from clawfleet.domain.lifecycle import (
    AgentState,
    InstancePhase,
    StopRequest,
    agent_phase,
    desired_instances,
    restart_delay,
)
from clawfleet.domain.resources import ResourceRecord
from clawfleet.runtimes.base import INSTANCE_LABEL, Handle, LaunchSpec, Runtime, State
from clawfleet.schemas.agents import AgentSpec, read_agent_spec
from clawfleet.schemas.base import parse_duration
from clawfleet.services.dispatch import Dispatcher
from clawfleet.services.instances import InstanceService
from clawfleet.services.resources import ResourceService
from clawfleet.services.tokens import TokenService
from clawfleet.store.db import Database
from clawfleet.store.notify import Notifier

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class AgentControllerConfig:
    server_url: str
    runner_command: tuple[str, ...]
    base_env: Mapping[str, str]
    lost_after: float = 15.0  # seconds without a heartbeat
    start_timeout: float = 60.0  # seconds from launch to register
    drain_timeout: float = 30.0  # seconds a stopping instance may finish its runs
    stop_grace: float = 5.0
    sleeping_idle: float = 30.0  # idle seconds before a woken Sleeping agent sleeps again


def _handle(row: Instance) -> Handle | None:
    doc = row.handle
    if not doc:
        return None
    return Handle(doc["runtime"], doc["instance_id"], doc["ref"], doc.get("labels") or {})


def _handle_doc(handle: Handle) -> dict[str, Any]:
    return {"runtime": handle.runtime, "instance_id": handle.instance_id, "ref": handle.ref,
            "labels": dict(handle.labels)}  # fmt: skip


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
        resources: ResourceService,
        instances: InstanceService,
        tokens: TokenService,
        dispatcher: Dispatcher,
        runtimes: Mapping[str, Runtime],
        config: AgentControllerConfig,
    ) -> None:
        super().__init__(db, clock, notifier)
        self.resources = resources
        self.instances = instances
        self.tokens = tokens
        self.dispatcher = dispatcher
        self.runtimes = runtimes
        self.config = config
        self.last_busy: dict[str, datetime] = {}
        self.collected_orphans = False

    async def reconcile_once(self) -> None:
        agents = await self.resources.all_of_kind("Agent")
        rows = await self.instances.all()
        queued, running = await self.dispatcher.load()
        by_agent: dict[str, list[Instance]] = {}
        for row in rows:
            by_agent.setdefault(row.agent_uid, []).append(row)
        known = {agent.uid for agent in agents}
        for row in rows:
            if row.agent_uid not in known:
                await self._stop(row, "AgentDeleted", force=True)
        if not self.collected_orphans:
            await self._collect_orphans({row.id for row in rows})
        for agent in agents:
            try:
                await self._reconcile_agent(agent, by_agent.get(agent.uid, []), queued, running)
            except ClawfleetError as exc:
                log.warning("agent %s: %s", agent.key.describe(), exc.message)
            except Exception:
                log.exception("agent %s: reconcile failed", agent.key.describe())

    async def _collect_orphans(self, live_ids: set[str]) -> None:
        """Stop processes a runtime still runs for instances the store no longer has."""
        for runtime in self.runtimes.values():
            for handle in await runtime.list_owned():
                if handle.labels.get(INSTANCE_LABEL, handle.instance_id) in live_ids:
                    continue
                if (await runtime.inspect(handle)).state is State.RUNNING:
                    log.info("stopping orphaned instance %s", handle.instance_id)
                    await runtime.stop(handle, self.config.stop_grace)
        self.collected_orphans = True

    # -- one agent ---------------------------------------------------------------------------

    async def _reconcile_agent(
        self,
        agent: ResourceRecord,
        rows: list[Instance],
        queued: Mapping[str, int],
        running: Mapping[str, int],
    ) -> None:
        now = self.clock.now()
        spec = read_agent_spec(agent)
        busy_runs = sum(running.get(row.id, 0) for row in rows)
        busy = queued.get(agent.uid, 0) > 0 or busy_runs > 0
        if busy or agent.uid not in self.last_busy:
            self.last_busy[agent.uid] = now
        asleep = await self._sleep_state(agent, spec, busy, queued.get(agent.uid, 0), now)
        desired = desired_instances(spec.state, spec.replicas, asleep=asleep)
        runtime = self.runtimes.get(spec.runtime)
        live = []
        for row in rows:
            kept = await self._observe(agent, spec, row, running.get(row.id, 0), runtime)
            if kept is not None:
                live.append(kept)
        active = [row for row in live if row.stop_requested is StopRequest.NONE]
        error = None
        if runtime is None:
            error = f"runtime {spec.runtime!r} is not available on this control plane"
        elif len(active) < desired:
            for _ in range(desired - len(active)):
                created = await self.instances.create(agent, runtime.name)
                live.append(await self._launch(agent, spec, created, runtime))
        elif len(active) > desired:
            extra = sorted(active, key=lambda r: (running.get(r.id, 0), r.created_at))
            for row in extra[: len(active) - desired]:
                await self._request_stop(row)
        await self._write_status(agent, spec, live, desired, asleep, error)

    async def _sleep_state(
        self, agent: ResourceRecord, spec: AgentSpec, busy: bool, queued: int, now: datetime
    ) -> bool:
        was_asleep = bool(agent.status.get("asleep", spec.state is AgentState.SLEEPING))
        if spec.state is AgentState.STOPPED:
            return False
        if spec.idle_timeout:
            idle_limit: float | None = float(parse_duration(spec.idle_timeout))
        else:
            idle_limit = self.config.sleeping_idle if spec.state is AgentState.SLEEPING else None
        idle_for = (now - self.last_busy[agent.uid]).total_seconds()
        if was_asleep and busy:
            await self.instances.agent_event(agent, "Woke", f"{queued} task(s) waiting")
            return False
        if not was_asleep and not busy and idle_limit is not None and idle_for >= idle_limit:
            await self.instances.agent_event(agent, "Slept", f"idle for {int(idle_for)}s")
            return True
        return was_asleep

    # -- one instance ------------------------------------------------------------------------

    async def _observe(
        self,
        agent: ResourceRecord,
        spec: AgentSpec,
        row: Instance,
        running_runs: int,
        runtime: Runtime | None,
    ) -> Instance | None:
        """Act on what the runtime reports; None once the instance is stopped."""
        now = self.clock.now()
        phase = row.phase
        if row.stop_requested is StopRequest.STOP or phase is InstancePhase.STOPPING:
            return await self._drain(row, now)
        if runtime is None or runtime.name != row.runtime:
            await self._stop(row, "RuntimeChanged", force=True)
            return None
        if row.stop_requested is StopRequest.RESTART:
            await self._halt(row, "restart requested")
            return await self._launch(
                agent, spec, row, runtime, reason="Restarted", restarts=row.restarts + 1,
                stop_requested=StopRequest.NONE,
            )  # fmt: skip
        if phase is InstancePhase.PENDING or (
            phase is InstancePhase.CRASH_LOOP and row.backoff_until and row.backoff_until <= now
        ):
            relaunch = phase is InstancePhase.CRASH_LOOP
            return await self._launch(
                agent, spec, row, runtime, reason="Relaunched" if relaunch else None
            )
        if phase is InstancePhase.CRASH_LOOP:
            return row
        handle = _handle(row)
        observed = await runtime.inspect(handle) if handle else None
        if observed is None or observed.state is not State.RUNNING:
            code = observed.exit_code if observed else None
            return await self._crashed(
                row,
                f"the runner exited (code {code})" if code is not None else "the runner is gone",
            )
        started = row.started_at or now
        if (
            phase is InstancePhase.STARTING
            and (now - started).total_seconds() > self.config.start_timeout
        ):
            await self._halt(row, "the runner did not register in time")
            return await self._crashed(row, "the runner did not register in time")
        if phase in (InstancePhase.RUNNING, InstancePhase.LOST) and row.heartbeat_at is not None:
            silent = (now - row.heartbeat_at).total_seconds()
            if silent > self.config.lost_after:
                if phase is InstancePhase.RUNNING:
                    message = f"no heartbeat for {int(silent)}s"
                    lost = await self.instances.transition(
                        row, InstancePhase.LOST, reason="Lost", warning=True, message=message
                    )
                    if lost is None:
                        return row
                    row = lost
                await self._halt(row, "heartbeats stopped")
                return await self._launch(
                    agent, spec, row, runtime, reason="Replaced", restarts=row.restarts + 1
                )
            if row.consecutive_failures and silent < 5 and (now - started).total_seconds() > 10:
                row = await self.instances.update(row, consecutive_failures=0)
        if (
            row.revision != spec.revision().digest
            and running_runs == 0
            and phase is InstancePhase.RUNNING
        ):
            await self._halt(row, "what the agent runs changed")
            return await self._launch(agent, spec, row, runtime, reason="Updated")
        return row

    async def _launch(
        self,
        agent: ResourceRecord,
        spec: AgentSpec,
        row: Instance,
        runtime: Runtime,
        *,
        reason: str | None = "Launched",
        **values: Any,
    ) -> Instance:
        """Launch (or relaunch) the instance; on a failure, it crash-loops. Returns it as it is
        now (unchanged if it moved meanwhile: the next pass sees it again)."""
        now = self.clock.now()
        try:
            env = dict(self.config.base_env)
            env.update(spec.env)
            env.update(await self.resources.resolve_secret_env(agent))
        except ClawfleetError as exc:
            return await self._crash_loop(
                row, exc.message, delay=5.0, reason="ConfigError", **values
            )
        token_id, token = await self.tokens.mint_runner(row.id, row.tenant)
        env.update(
            CLAWFLEET_RUNNER_SERVER=self.config.server_url,
            CLAWFLEET_RUNNER_INSTANCE=row.id,
            CLAWFLEET_RUNNER_TOKEN=token,
        )
        labels = {"clawfleet.dev/agent": row.agent, "clawfleet.dev/tenant": row.tenant,
                  "clawfleet.dev/project": row.project}  # fmt: skip
        launch = LaunchSpec(row.id, self.config.runner_command, env=env, labels=labels)
        try:
            handle = await runtime.launch(launch)
        except PermanentError as exc:
            await self.tokens.revoke(token_id)
            return await self._crash_loop(
                row, exc.message, delay=30.0, reason="LaunchFailed", **values
            )
        except ClawfleetError:
            await self.tokens.revoke(token_id)
            raise
        if row.token_id:
            await self.tokens.revoke(row.token_id)
        moved = await self.instances.transition(
            row, InstancePhase.STARTING, reason=reason, message=f"on {runtime.name}: {handle.ref}",
            handle=_handle_doc(handle), token_id=token_id, started_at=now, heartbeat_at=None,
            revision=spec.revision().digest, agent_generation=agent.generation, **values,
        )  # fmt: skip
        return moved or row

    async def _crashed(self, row: Instance, why: str) -> Instance:
        await self.dispatcher.outcomes.fail_instance_runs(row.id, why)
        failures = row.consecutive_failures + 1
        return await self._crash_loop(
            row, why, delay=restart_delay(failures), reason="Crashed",
            consecutive_failures=failures, restarts=row.restarts + 1,
        )  # fmt: skip

    async def _crash_loop(
        self, row: Instance, why: str, *, delay: float, reason: str, **values: Any
    ) -> Instance:
        until = self.clock.now() + timedelta(seconds=delay)
        moved = await self.instances.transition(
            row, InstancePhase.CRASH_LOOP, reason=reason, warning=True,
            message=f"{why}; next try in {delay:g}s", last_error=why, backoff_until=until, **values,
        )  # fmt: skip
        return moved or row

    async def _halt(self, row: Instance, why: str) -> None:
        """Stop the process (if any) and release what the instance held; phase unchanged."""
        handle = _handle(row)
        runtime = self.runtimes.get(row.runtime)
        if handle is not None and runtime is not None:
            await runtime.stop(handle, self.config.stop_grace)
        await self.dispatcher.outcomes.fail_instance_runs(row.id, why)

    async def _request_stop(self, row: Instance) -> None:
        pending = row.phase is InstancePhase.PENDING
        await self.instances.transition(
            row,
            InstancePhase.STOPPED if pending else row.phase,
            stop_requested=StopRequest.STOP,
            reason="ScaledDown",
            message="more instances than desired",
        )

    async def _drain(self, row: Instance, now: datetime) -> Instance | None:
        """A stopping instance finishes its runs (the runner drains), then is stopped."""
        if row.phase is InstancePhase.PENDING:
            await self.instances.transition(row, InstancePhase.STOPPED, stopped_at=now)
            return None
        if row.phase is not InstancePhase.STOPPING:
            moved = await self.instances.transition(row, InstancePhase.STOPPING, reason="Stopping")
            await self.notifier.notify(f"instance:{row.id}")
            return moved or row
        handle = _handle(row)
        runtime = self.runtimes.get(row.runtime)
        alive = bool(handle and runtime and (await runtime.inspect(handle)).state is State.RUNNING)
        if alive and (now - row.updated_at).total_seconds() < self.config.drain_timeout:
            return row
        await self._stop(row, "Stopped")
        return None

    async def _stop(self, row: Instance, reason: str, *, force: bool = False) -> None:
        await self._halt(row, "the instance stopped")
        if row.token_id:
            await self.tokens.revoke(row.token_id)
        if row.phase is InstancePhase.STOPPED:
            return
        direct = (InstancePhase.STOPPING, InstancePhase.PENDING, InstancePhase.CRASH_LOOP,
                  InstancePhase.LOST)  # fmt: skip
        if row.phase not in direct and not force:
            stopping = await self.instances.transition(row, InstancePhase.STOPPING)
            if stopping is None:
                return
            row = stopping
        await self.instances.transition(
            row, InstancePhase.STOPPED, reason=reason, stopped_at=self.clock.now()
        )

    async def _write_status(
        self,
        agent: ResourceRecord,
        spec: AgentSpec,
        live: list[Instance],
        desired: int,
        asleep: bool,
        error: str | None,
    ) -> None:
        now = self.clock.now()
        fresh = now - timedelta(seconds=self.config.lost_after)
        ready = [
            r
            for r in live
            if r.phase is InstancePhase.RUNNING and r.heartbeat_at and r.heartbeat_at >= fresh
        ]
        crash = [r for r in live if r.phase is InstancePhase.CRASH_LOOP]
        phase = agent_phase(
            spec.state,
            asleep=asleep,
            degraded=bool(error or crash),
            ready=len(ready),
            desired=desired,
        )
        last_error = error or next((r.last_error for r in crash if r.last_error), None)
        status = {
            "phase": phase.value,
            "replicas": desired,
            "readyReplicas": len(ready),
            "instances": len(live),
            "restarts": sum(r.restarts for r in live),
            "asleep": asleep,
            "lastError": last_error,
            "observedGeneration": agent.generation,
        }
        await self.resources.set_status(agent, status)
