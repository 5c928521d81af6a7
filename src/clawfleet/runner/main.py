"""The runner process: register, heartbeat, claim runs, execute them through the adapter driver,
obey commands (cancel, steer, stop), and drain cleanly on SIGTERM.

Started by a runtime as ``clawfleet runner`` with ``CLAWFLEET_RUNNER_SERVER``,
``CLAWFLEET_RUNNER_INSTANCE`` and ``CLAWFLEET_RUNNER_TOKEN`` in its environment, which the entry
point reads once into ``RunnerSettings``. The token is removed from the environment at once, so
no agent program inherits it.

The runner holds secrets: its token and the agent's ``secretEnv`` values. Both are registered
with its ``Redactor`` (in production the process-wide one, which also guards its log lines), so
they never reach the control plane in run events, output or errors. The register answer names
the secret ones (``secretEnvNames``); plain ``env`` values stay readable.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from clawfleet.adapters.base import AgentBundle, Driver
from clawfleet.client.runner import RunnerClient
from clawfleet.core.errors import ConfigurationError, Unauthenticated
from clawfleet.core.redact import Redactor, default_redactor
from clawfleet.core.settings import RunnerSettings
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


class Runner:
    def __init__(
        self,
        client: RunnerClient,
        env: Mapping[str, str],
        workdir: Path,
        redactor: Redactor | None = None,
    ) -> None:
        self.client = client
        self.env = env
        self.workdir = workdir
        self.redactor = redactor if redactor is not None else Redactor()
        self.active: dict[str, RunExecution] = {}
        self.stopping = asyncio.Event()
        self.seen_commands: set[int] = set()
        self.concurrency = 1
        self.heartbeat_seconds = 2.0
        self.driver: Driver | None = None
        self.idle = asyncio.Event()

    async def run(self) -> int:
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
        self.driver = make_driver(bundle.adapter)
        await self.driver.start(bundle)
        log.info("runner for instance %s ready", registration["instance"]["name"])
        loops = [
            asyncio.create_task(self._heartbeats()),
            asyncio.create_task(self._commands()),
            asyncio.create_task(self._claims()),
        ]
        stopper = asyncio.create_task(self.stopping.wait())
        done, _ = await asyncio.wait([*loops, stopper], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not stopper and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        for task in loops:
            task.cancel()
        await self._drain()
        return 0

    async def _drain(self) -> None:
        """Cancel what is running (reported as runner-lost, so tasks retry elsewhere)."""
        for execution in list(self.active.values()):
            await execution.cancel("shutdown")
        if self.active:
            self.idle.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.idle.wait(), DRAIN_SECONDS)
        if self.driver is not None:
            await self.driver.stop()

    async def _heartbeats(self) -> None:
        while not self.stopping.is_set():
            liveness = "ready" if self.active else "idle"
            answer = await self.client.heartbeat(liveness, list(self.active), [])
            await self._obey(answer.get("commands", []))
            if answer.get("stop"):
                log.info("the control plane asked this runner to stop")
                self.stopping.set()
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), self.heartbeat_seconds)

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

    async def _claims(self) -> None:
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
                assert self.driver is not None
                execution = RunExecution(self.client, self.driver, claim, self.redactor)
                self.active[execution.run_id] = execution
                task = asyncio.create_task(execution.execute())
                task.add_done_callback(functools.partial(self._finished, execution.run_id, free))

    def _finished(self, run_id: str, free: asyncio.Semaphore, task: asyncio.Task[None]) -> None:
        self.active.pop(run_id, None)
        free.release()
        if not self.active:
            self.idle.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("run %s ended with an error: %s", run_id, task.exception())


async def run_runner(settings: RunnerSettings, environ: Mapping[str, str]) -> int:
    """Serve one instance until told to stop; returns the process exit status.

    ``environ`` is the runner's environment without its token (the entry point removed it):
    the agent's ``env`` and ``secretEnv`` values are taken from it.
    """
    token = settings.token.get_secret_value()
    redactor = default_redactor()  # the one the log handler's filter uses
    redactor.add(token)
    client = RunnerClient(settings.server, settings.instance, token)
    runner = Runner(client, environ, Path.cwd(), redactor)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, runner.stopping.set)
    try:
        return await runner.run()
    except Unauthenticated as exc:
        log.error("%s", exc.message)
        return 3
    finally:
        await client.close()
