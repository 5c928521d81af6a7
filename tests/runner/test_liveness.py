"""What a runner's heartbeats say: busy while it runs work, ready when its agent program can
take some, degraded when it cannot; and an agent program that died is started again.

The agent program is a scripted driver (our Driver seam), so its death is a decision of the
test; the control plane is the real app, which stores the liveness each heartbeat reports.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from clawfleet.adapters.base import AgentBundle, AgentEvent, RunInput
from clawfleet.client.runner import RunnerClient
from clawfleet.core.errors import PermanentError
from clawfleet.runner.loops import Runner
from clawfleet.schemas.tasks import TaskIn
from clawfleet.server import SYSTEM, ControlPlane
from clawfleet.testing.clock import FakeClock
from tests.runner.conftest import BASE_URL, Wire, runner_env


class AgentProgram:
    """A driver whose program runs one run until ``finish`` is set, and dies when told."""

    def __init__(self) -> None:
        self.running = False
        self.starts = 0
        self.refuse_start = False
        self.finish = asyncio.Event()

    async def start(self, bundle: AgentBundle) -> None:
        self.starts += 1
        if self.refuse_start:
            raise PermanentError("the agent program is gone")
        self.running = True

    async def ready(self) -> bool:
        return self.running

    async def execute(self, run: RunInput) -> AsyncIterator[AgentEvent]:
        await self.finish.wait()
        yield AgentEvent("result", {"status": "succeeded", "output": "done"})

    async def steer(self, run_id: str, message: str) -> None:
        pass

    async def cancel(self, run_id: str, grace: float = 3.0) -> None:
        self.finish.set()

    async def stop(self, grace: float = 5.0) -> None:
        self.running = False


async def test_heartbeats_say_busy_ready_and_degraded_and_a_dead_program_is_restarted(
    plane: ControlPlane,
    clock: FakeClock,
    wire: Wire,
    launch: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    instance = await launch()
    state = plane.app.state.api
    program = AgentProgram()
    client = RunnerClient(BASE_URL, instance.id, instance.token, clock=clock, transport=wire)
    runner = Runner(client, runner_env(), instance.workdir, clock=clock, drivers=lambda _: program)
    serving = asyncio.ensure_future(runner.run())

    async def liveness_after_a_heartbeat() -> str:
        await clock.run_for(2)
        return str((await state.instances.all())[0].liveness)

    try:
        await wire.answered("heartbeat")
        assert await liveness_after_a_heartbeat() == "ready"

        task = {"spec": {"agent": "a", "prompt": "work"}}
        await state.tasks.submit(SYSTEM, TaskIn.model_validate(task))
        await clock.settle()
        assert len(runner.active) == 1
        assert await liveness_after_a_heartbeat() == "busy"

        program.finish.set()
        await wire.answered("complete")
        program.running, program.refuse_start = False, True  # the program died for good
        assert await liveness_after_a_heartbeat() == "degraded"
        program.refuse_start = False  # and can be started again
        assert await liveness_after_a_heartbeat() == "ready"
        assert program.starts == 3  # the first start, one refused and one that worked
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any("could not be started again (attempt 1)" in line for line in warnings)
        assert any("started it again (2)" in line for line in warnings)
    finally:
        runner.stopping.set()
        await asyncio.wait_for(serving, 30)
        await client.close()
