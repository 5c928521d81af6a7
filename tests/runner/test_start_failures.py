"""A runner that cannot start its agent program tells the control plane why, then exits.

The cause lands where the user looks (the instance's lastError and events), the runner's log
has one clear line and no traceback, and the exit status says "permanent start failure".
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from clawfleet.runner.main import RunnerExit, run_runner
from clawfleet.server import SYSTEM, ControlPlane
from clawfleet.testing.clock import FakeClock
from tests.runner.conftest import Wire, programs_in, runner_env

NOT_FOUND = (
    "the agent program 'nosuchprogram' was not found on the agent's PATH; install it, use an "
    "absolute path, or set PATH in the agent's env"
)


async def test_a_program_not_on_path_is_reported_and_ends_the_runner(
    plane: ControlPlane,
    clock: FakeClock,
    wire: Wire,
    launch: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    instance = await launch(command=["nosuchprogram"])
    status = await run_runner(instance.settings(), runner_env(), clock=clock, transport=wire)

    assert status == RunnerExit.START_FAILED
    assert ("failed", 200) in wire.answers
    assert "claim" not in {path for path, _ in wire.answers}  # it never asked for work
    state = plane.app.state.api
    row = (await state.instances.all())[0]
    assert row.last_error == NOT_FOUND
    assert row.start_failure == NOT_FOUND  # what the agent controller keeps when it exits
    events = await state.instances.events(SYSTEM, "Instance", row.name)
    assert {"type": "Warning", "reason": "StartFailed", "message": NOT_FOUND}.items() <= (
        events[-1].items()
    )
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == [NOT_FOUND]
    assert errors[0].exc_info is None
    assert programs_in(instance.workdir) == []


async def test_only_the_report_of_the_current_launch_counts(
    plane: ControlPlane, launch: Callable[..., Any]
) -> None:
    await launch(command=["nosuchprogram"])
    row = (await plane.app.state.api.instances.all())[0]
    reported = replace(row, liveness="failed", heartbeat_at=datetime.now(UTC), last_error=NOT_FOUND)
    assert reported.start_failure == NOT_FOUND
    # Launched again (heartbeat_at cleared): a runner that dies before it registers said nothing.
    assert replace(reported, heartbeat_at=None).start_failure is None
    # The new runner registered (liveness "starting"): the old report is history.
    assert replace(reported, liveness="starting").start_failure is None


async def test_a_runner_may_report_only_for_its_own_instance(
    plane: ControlPlane, anon: httpx.AsyncClient, launch: Callable[..., Any]
) -> None:
    instance = await launch(command=["nosuchprogram"])
    state = plane.app.state.api
    record = (await state.agents.all_agents())[0]
    other = await state.instances.create(record, "local")
    response = await anon.post(
        f"/api/v1/runner/instances/{other.id}/failed",
        json={"error": "not mine to say", "permanent": True},
        headers={"Authorization": f"Bearer {instance.token}"},
    )
    assert response.status_code == 403
    rows = {row.id: row for row in await state.instances.all()}
    assert rows[other.id].last_error is None
