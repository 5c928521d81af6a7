"""Carries out the instance plan's actions: launches, crash loops, halts, drains and stops.

The agent controller decides what to do with an instance (``instance_plan``) and this module
does it, on the runtime, the runner tokens and the instance records. Each action returns the
instance as it is afterwards: unchanged when its compare-and-swap lost (the next pass observes
again), None once it is stopped.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from clawfleet.controllers.config import AgentControllerConfig
from clawfleet.controllers.instance_plan import (
    Action,
    CrashLoop,
    Drain,
    Keep,
    Launch,
    MarkLost,
    Relaunch,
    Replace,
    ResetFailures,
    Restart,
    Stop,
)
from clawfleet.core.clock import Clock
from clawfleet.core.errors import ClawfleetError, PermanentError
from clawfleet.domain.instances import Instance
from clawfleet.domain.lifecycle import InstancePhase, StopRequest
from clawfleet.domain.resources import ResourceRecord
from clawfleet.runtimes.base import Handle, LaunchSpec, Observation, Runtime
from clawfleet.schemas.agents import AgentSpec
from clawfleet.services.agents import AgentService
from clawfleet.services.dispatch import Dispatcher
from clawfleet.services.instances import InstanceService
from clawfleet.services.tokens import TokenService
from clawfleet.store.notify import Notifier

CONFIG_RETRY = 5.0  # seconds before retrying a launch whose config (a secret) is missing
LAUNCH_RETRY = 30.0  # seconds before retrying a launch the runtime refused for good


def handle_of(instance: Instance) -> Handle | None:
    doc = instance.handle
    if not doc:
        return None
    return Handle(doc["runtime"], doc["instance_id"], doc["ref"], doc.get("labels") or {})


def handle_doc(handle: Handle) -> dict[str, Any]:
    return {"runtime": handle.runtime, "instance_id": handle.instance_id, "ref": handle.ref,
            "labels": dict(handle.labels)}  # fmt: skip


class InstanceExecutor:
    def __init__(
        self,
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
        self.clock = clock
        self.notifier = notifier
        self.agents = agents
        self.instances = instances
        self.tokens = tokens
        self.dispatcher = dispatcher
        self.runtimes = runtimes
        self.config = config

    async def inspect(self, instance: Instance) -> Observation | None:
        """What the instance's runtime reports for its handle; None without either."""
        handle = handle_of(instance)
        runtime = self.runtimes.get(instance.runtime)
        if handle is None or runtime is None:
            return None
        return await runtime.inspect(handle)

    async def execute(
        self, agent: ResourceRecord, spec: AgentSpec, instance: Instance, action: Action
    ) -> Instance | None:
        """Carry out ``action``; the instance as it is now, or None once it is stopped."""
        match action:
            case Keep():
                return instance
            case Launch(reason=reason):
                return await self.launch(agent, spec, instance, reason=reason)
            case Relaunch():
                return await self.launch(agent, spec, instance, reason="Relaunched")
            case Restart():
                await self._halt(instance, "restart requested")
                # Consumed whatever the launch does: a failed one crash-loops with its backoff.
                return await self.launch(
                    agent, spec, instance, reason="Restarted",
                    restarts=instance.restarts + 1, stop_requested=StopRequest.NONE,
                )  # fmt: skip
            case Replace(reason=reason, why=why, counts_as_restart=counts):
                await self._halt(instance, why)
                restarts = instance.restarts + (1 if counts else 0)
                return await self.launch(agent, spec, instance, reason=reason, restarts=restarts)
            case MarkLost(message=message):
                lost = await self.instances.transition(
                    instance, InstancePhase.LOST, reason="Lost", warning=True, message=message
                )
                return lost or instance
            case CrashLoop(why=why, delay=delay, halt=halt):
                if halt:
                    await self._halt(instance, why)
                else:
                    await self.dispatcher.outcomes.fail_instance_runs(instance.id, why)
                return await self._crash_loop(
                    instance, why, delay=delay, reason="Crashed",
                    consecutive_failures=instance.consecutive_failures + 1,
                    restarts=instance.restarts + 1,
                )  # fmt: skip
            case ResetFailures():
                return await self.instances.update(instance, consecutive_failures=0)
            case Drain():
                stopping = await self.instances.transition(
                    instance, InstancePhase.STOPPING, reason="Stopping"
                )
                await self.notifier.notify(f"instance:{instance.id}")
                return stopping or instance
            case Stop(reason=reason):
                await self.stop(instance, reason)
                return None

    async def launch(
        self,
        agent: ResourceRecord,
        spec: AgentSpec,
        instance: Instance,
        *,
        reason: str = "Launched",
        **values: Any,
    ) -> Instance:
        """Launch the instance's runner with the agent's current revision; if that fails, it
        crash-loops. ``values`` are written either way. Returns the instance as it is now
        (unchanged if it moved meanwhile: the next pass sees it again)."""
        runtime = self.runtimes[instance.runtime]
        try:
            env = {**self.config.base_env, **spec.env}
            env.update(await self.agents.resolve_secret_env(agent))
        except ClawfleetError as exc:
            return await self._crash_loop(
                instance, exc.message, delay=CONFIG_RETRY, reason="ConfigError", **values
            )
        token_id, token = await self.tokens.mint_runner(instance.id, instance.tenant)
        env.update(
            CLAWFLEET_RUNNER_SERVER=self.config.server_url,
            CLAWFLEET_RUNNER_INSTANCE=instance.id,
            CLAWFLEET_RUNNER_TOKEN=token,
        )
        labels = {"clawfleet.dev/agent": instance.agent, "clawfleet.dev/tenant": instance.tenant,
                  "clawfleet.dev/project": instance.project}  # fmt: skip
        launch = LaunchSpec(instance.id, self.config.runner_command, env=env, labels=labels)
        try:
            handle = await runtime.launch(launch)
        except PermanentError as exc:
            await self.tokens.revoke(token_id)
            return await self._crash_loop(
                instance, exc.message, delay=LAUNCH_RETRY, reason="LaunchFailed", **values
            )
        except ClawfleetError:
            await self.tokens.revoke(token_id)
            raise
        if instance.token_id:
            await self.tokens.revoke(instance.token_id)
        started = await self.instances.transition(
            instance, InstancePhase.STARTING, reason=reason,
            message=f"on {runtime.name}: {handle.ref}", handle=handle_doc(handle),
            token_id=token_id, started_at=self.clock.now(), heartbeat_at=None,
            revision=spec.revision().digest, agent_generation=agent.generation, **values,
        )  # fmt: skip
        return started or instance

    async def _crash_loop(
        self, instance: Instance, why: str, *, delay: float, reason: str, **values: Any
    ) -> Instance:
        until = self.clock.now() + timedelta(seconds=delay)
        moved = await self.instances.transition(
            instance, InstancePhase.CRASH_LOOP, reason=reason, warning=True,
            message=f"{why}; next try in {delay:g}s", last_error=why, backoff_until=until,
            **values,
        )  # fmt: skip
        return moved or instance

    async def _halt(self, instance: Instance, why: str) -> None:
        """Stop the process (if any) and fail the runs it held; the phase is unchanged."""
        handle = handle_of(instance)
        runtime = self.runtimes.get(instance.runtime)
        if handle is not None and runtime is not None:
            await runtime.stop(handle, self.config.stop_grace)
        await self.dispatcher.outcomes.fail_instance_runs(instance.id, why)

    async def request_stop(self, instance: Instance) -> Instance:
        """Ask an extra instance to stop; the next pass drains and stops it."""
        return await self.instances.update(
            instance, stop_requested=StopRequest.STOP,
            reason="ScaledDown", message="more instances than desired",
        )  # fmt: skip

    async def stop(self, instance: Instance, reason: str) -> None:
        """Stop the process, revoke its token, and move the instance to Stopped."""
        await self._halt(instance, "the instance stopped")
        if instance.token_id:
            await self.tokens.revoke(instance.token_id)
        if instance.phase is not InstancePhase.STOPPED:
            await self.instances.transition(
                instance, InstancePhase.STOPPED, reason=reason, stopped_at=self.clock.now()
            )
