"""The runner's work for one instance: register, start the agent program through its driver,
then heartbeat, obey commands (cancel, steer, stop) and claim runs, and drain on the way out.

The three loops run in one task group, so a loop that fails (a refused heartbeat, a control
plane gone for good) cancels the others; whatever ends the runner, it drains: runs in flight
are cancelled and reported as ``runner-lost`` (their tasks retry elsewhere), and the agent
program is stopped. A runner whose agent program cannot start tells the control plane why
before it ends (``AgentStartFailed``); one whose long-lived program died starts it again.

The runner holds secrets: its token and the agent's ``secretEnv`` values. Both are registered
with its ``Redactor`` (in production the process-wide one, which also guards its log lines), so
they never reach the control plane in run events, output or errors. The register answer names
the secret ones (``secretEnvNames``); plain ``env`` values stay readable.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from clawfleet.adapters.base import AgentBundle, Driver
from clawfleet.client.runner import RunnerClient
from clawfleet.core.clock import Clock, SystemClock
from clawfleet.core.errors import ClawfleetError, ConfigurationError, TemporaryError
from clawfleet.core.redact import Redactor
from clawfleet.runner.execution import RunExecution

log = logging.getLogger(__name__)

CLAIM_WAIT = 25.0
COMMANDS_WAIT = 25.0
DRAIN_SECONDS = 10.0


def make_driver(adapter: str) -> Driver:
    if adapter == "command":
        from clawfleet.adapters.command import CommandDriver

        return CommandDriver()
    raise ConfigurationError(f"adapter {adapter!r} is not supported by this runner yet")


def sensitive_env_values(env: Mapping[str, str], bundle: Mapping[str, Any]) -> list[str]:
    """The values of ``env`` that came from the agent's secretEnv (``bundle`` is the register
    answer's)."""
    return [env[name] for name in bundle.get("secretEnvNames", []) if name in env]


class AgentStartFailed(ClawfleetError):
    """The agent program could not start; the control plane has been told why."""

    code = "agent-start-failed"

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class _StopRequested(Exception):
    """Ends the runner's task group when the runner is asked to stop: a task group cancels the
    other tasks only when one of them fails."""


class Runner:
    """Serves one instance: registers, starts the agent program, then heartbeats, obeys
    commands and claims runs, in three loops of one task group, until it is asked to stop or a
    loop fails (which cancels the others). Whatever ends it, it drains: runs in flight are
    cancelled and reported, and the agent program is stopped."""

    def __init__(
        self,
        client: RunnerClient,
        env: Mapping[str, str],
        workdir: Path,
        redactor: Redactor | None = None,
        clock: Clock | None = None,
        drivers: Callable[[str], Driver] = make_driver,
    ) -> None:
        self.client = client
        self.drivers = drivers
        self.env = env
        self.workdir = workdir
        self.redactor = redactor if redactor is not None else Redactor()
        self.clock = clock or SystemClock()
        self.active: dict[str, RunExecution] = {}
        self.stopping = asyncio.Event()
        self.seen_commands: set[int] = set()
        self.concurrency = 1
        self.heartbeat_seconds = 2.0
        self.driver: Driver | None = None
        self.agent_restarts = 0  # of the agent program, after it stopped on its own
        # Runs are not in the task group: one run failing to report must not end the others,
        # and at shutdown they outlive the loops to report that they were cut short.
        self._executions: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Serve until asked to stop, or until a loop fails (raises its error)."""
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._stop_when_asked())
                group.create_task(self._serve(group))
        except ExceptionGroup as ended:
            errors = [e for e in ended.exceptions if not isinstance(e, _StopRequested)]
            if errors:
                raise errors[0] from None  # the loop that failed; the others were cancelled
        finally:
            await self._drain()

    async def _stop_when_asked(self) -> None:
        await self.stopping.wait()
        raise _StopRequested

    async def _serve(self, group: asyncio.TaskGroup) -> None:
        registration = await self.client.register()
        bundle_doc = registration["bundle"]
        self.redactor.add(*sensitive_env_values(self.env, bundle_doc))
        self.concurrency = int(registration.get("concurrency") or 1)
        self.heartbeat_seconds = float(registration.get("heartbeatSeconds") or 2.0)
        bundle = AgentBundle(
            adapter=bundle_doc["adapter"],
            command=bundle_doc["command"],
            workdir=self.workdir,
            config=bundle_doc.get("config") or {},
            env={
                name: self.env[name] for name in bundle_doc.get("envNames", []) if name in self.env
            },
            instructions=bundle_doc.get("instructions"),
        )
        driver = await self._start_agent(bundle)
        log.info("runner for instance %s ready", registration["instance"]["name"])
        group.create_task(self._heartbeats(driver, bundle))
        group.create_task(self._commands())
        group.create_task(self._claims(driver))

    async def _start_agent(self, bundle: AgentBundle) -> Driver:
        """Start the agent program through its driver. If it cannot start, tell the control
        plane why (the user looks there, not in this log) and raise ``AgentStartFailed``."""
        try:
            self.driver = self.drivers(bundle.adapter)
            await self.driver.start(bundle)
            return self.driver
        except ClawfleetError as exc:
            failed = AgentStartFailed(
                self.redactor.redact(exc.message), permanent=not isinstance(exc, TemporaryError)
            )
        except Exception as exc:  # a driver bug: say so, then let its traceback reach the log
            why = self.redactor.redact(f"the agent program could not start: {exc!r}")
            await self.client.start_failed(why, permanent=False)
            raise
        await self.client.start_failed(failed.message, permanent=failed.permanent)
        raise failed

    async def _drain(self) -> None:
        """Cancel what is running (reported as runner-lost, so tasks retry elsewhere), give the
        reports ``DRAIN_SECONDS``, then stop the agent program."""
        running = list(self._executions)
        if running:
            await asyncio.gather(
                *(execution.cancel("shutdown") for execution in self.active.values()),
                return_exceptions=True,
            )
            reported = asyncio.gather(*running, return_exceptions=True)
            if not await self.clock.wait([reported], DRAIN_SECONDS):
                log.warning(
                    "%d run(s) could not report their end within %gs; the control plane "
                    "fails them when their lease runs out", len(self.active), DRAIN_SECONDS,
                )  # fmt: skip
                for task in running:
                    task.cancel()
            await reported
        if self.driver is not None:
            try:
                await self.driver.stop()
            except Exception:  # logged, so that the error that ended the runner stays its cause
                log.exception("could not stop the agent program")

    # The loops end when cancelled; they also check `stopping`, so that one whose calls happen
    # not to suspend (nothing to wait for) cannot starve the task that cancels them.

    async def _heartbeats(self, driver: Driver, bundle: AgentBundle) -> None:
        while not self.stopping.is_set():
            liveness = await self._liveness(driver, bundle)
            answer = await self.client.heartbeat(liveness, list(self.active), [])
            await self._obey(answer.get("commands", []))
            if answer.get("stop"):
                log.info("the control plane asked this runner to stop")
                self.stopping.set()
                return
            await self.clock.sleep(self.heartbeat_seconds)

    async def _liveness(self, driver: Driver, bundle: AgentBundle) -> str:
        """What the heartbeat says: ``busy`` while runs execute, ``ready`` when the agent program
        can take one, ``degraded`` when it cannot. An agent program that stopped on its own (a
        long-lived one died) is started again here, once no run is in flight on it."""
        if not self.active and not await driver.ready():
            await self._restart_agent(driver, bundle)
        if not await driver.ready():
            return "degraded"
        return "busy" if self.active else "ready"

    async def _restart_agent(self, driver: Driver, bundle: AgentBundle) -> None:
        self.agent_restarts += 1
        attempt = self.agent_restarts
        # A program that dies at once would be restarted at every heartbeat: log the 1st, 2nd,
        # 4th, 8th... time, so that the log stays bounded and still shows that it goes on.
        loud = attempt & (attempt - 1) == 0
        try:
            await driver.start(bundle)
        except ClawfleetError as exc:
            if loud:
                log.warning(
                    "the agent program is not running and could not be started again "
                    "(attempt %d): %s", attempt, exc.message,
                )  # fmt: skip
            return
        if loud:
            log.warning("the agent program had stopped; started it again (%d)", attempt)

    async def _commands(self) -> None:
        while not self.stopping.is_set():
            await self._obey(await self.client.commands(COMMANDS_WAIT))

    async def _obey(self, commands: list[dict[str, Any]]) -> None:
        fresh = [c for c in commands if c["id"] not in self.seen_commands]
        for command in fresh:
            self.seen_commands.add(command["id"])
            execution = self.active.get(command["runId"])
            if execution is None:
                continue
            if command["type"] == "cancel":
                reason = (command.get("payload") or {}).get("reason", "user")
                await execution.cancel("timeout" if reason == "timeout" else "user")
            elif command["type"] == "steer":
                await execution.steer((command.get("payload") or {}).get("message", ""))
        if fresh:
            await self.client.ack([c["id"] for c in fresh])

    async def _claims(self, driver: Driver) -> None:
        free = asyncio.Semaphore(self.concurrency)
        while not self.stopping.is_set():
            await free.acquire()
            slots = 1
            while slots < self.concurrency and not free.locked():
                await free.acquire()
                slots += 1
            claims = await self.client.claim(slots, CLAIM_WAIT)
            for _ in range(slots - len(claims)):
                free.release()
            for claim in claims:
                execution = RunExecution(self.client, driver, claim, self.redactor, self.clock)
                self.active[execution.run_id] = execution
                task = asyncio.create_task(execution.execute())
                self._executions.add(task)
                task.add_done_callback(functools.partial(self._finished, execution.run_id, free))

    def _finished(self, run_id: str, free: asyncio.Semaphore, task: asyncio.Task[None]) -> None:
        self._executions.discard(task)
        self.active.pop(run_id, None)
        free.release()
        if not task.cancelled() and task.exception() is not None:
            log.error("run %s ended with an error: %s", run_id, task.exception())
