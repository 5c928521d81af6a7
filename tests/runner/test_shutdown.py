"""However a runner ends, it ends whole: a failing loop cancels the others, and the runner
stops its agent program before it exits (runners in the test process, in fake time)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest

from clawfleet.domain.lifecycle import InstancePhase, StopRequest
from clawfleet.runner.main import RunnerExit, run_runner
from clawfleet.server import SYSTEM, ControlPlane
from clawfleet.testing.clock import FakeClock
from tests.runner.conftest import Wire, programs_in, runner_env

LONG_LIVED = {"command": ["sleep", "600"], "config": {"mode": "long-lived"}}


async def test_a_refused_heartbeat_ends_every_loop_and_the_agent_program(
    plane: ControlPlane,
    clock: FakeClock,
    wire: Wire,
    launch: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    instance = await launch(**LONG_LIVED)
    before = asyncio.all_tasks()
    runner = asyncio.ensure_future(
        run_runner(instance.settings(), runner_env(), clock=clock, transport=wire)
    )
    await wire.answered("heartbeat")
    assert len(programs_in(instance.workdir)) == 1
    await clock.settle()
    assert clock.sleepers >= 2  # the claim and commands long polls wait on the server

    await plane.app.state.api.tokens.revoke(instance.token_id)  # the next heartbeat gets a 401
    await clock.run_for(2)
    assert await asyncio.wait_for(runner, 30) == RunnerExit.REFUSED

    assert ("heartbeat", 401) in wire.answers
    assert asyncio.all_tasks() - before - {asyncio.current_task()} == set()  # loops cancelled
    assert clock.sleepers == 0  # and nothing of theirs waits on the server
    assert programs_in(instance.workdir) == []
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == [
        "the control plane refused this runner: invalid token; the agent program is stopped"
    ]
    assert errors[0].exc_info is None


async def test_an_orphaned_runner_gives_up_after_an_hour_and_stops_its_agent_program(
    clock: FakeClock,
    wire: Wire,
    launch: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    instance = await launch(**LONG_LIVED)
    runner = asyncio.ensure_future(
        run_runner(instance.settings(), runner_env(), clock=clock, transport=wire)
    )
    await wire.answered("heartbeat")
    wire.down = True  # the control plane is gone, for good
    caplog.clear()
    await clock.run_for(3599)
    assert not runner.done()
    assert programs_in(instance.workdir) != []  # an hour's outage is outlived

    await clock.run_for(120)
    assert await asyncio.wait_for(runner, 30) == RunnerExit.UNREACHABLE
    assert programs_in(instance.workdir) == []
    assert len(caplog.records) <= 20  # not a line every 2 s
    last = caplog.records[-1].getMessage()
    assert last.endswith(
        "for 1h0m; giving up (setting CLAWFLEET_RUNNER_GIVE_UP_AFTER_SECONDS); "
        "the agent program is stopped"
    )


async def test_a_stop_from_the_control_plane_drains_the_runner(
    plane: ControlPlane, clock: FakeClock, wire: Wire, launch: Callable[..., Any]
) -> None:
    instance = await launch(**LONG_LIVED)
    runner = asyncio.ensure_future(
        run_runner(instance.settings(), runner_env(), clock=clock, transport=wire)
    )
    await wire.answered("heartbeat")
    name = (await plane.app.state.api.instances.all())[0].name
    await plane.app.state.api.instances.request(SYSTEM, name, StopRequest.STOP)
    await clock.run_for(2)
    assert await asyncio.wait_for(runner, 30) == RunnerExit.STOPPED
    assert programs_in(instance.workdir) == []


async def test_a_runner_for_a_stopped_instance_exits_with_one_line(
    plane: ControlPlane,
    clock: FakeClock,
    wire: Wire,
    launch: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    instance = await launch(**LONG_LIVED)
    state = plane.app.state.api
    row = (await state.instances.all())[0]
    await state.instances.transition(row, InstancePhase.STOPPING)
    status = await run_runner(instance.settings(), runner_env(), clock=clock, transport=wire)
    assert status == RunnerExit.REFUSED
    assert ("register", 409) in wire.answers
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is None
    assert "is Stopping" in errors[0].getMessage()
    assert programs_in(instance.workdir) == []
