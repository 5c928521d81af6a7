"""The server's log at INFO is not drowned by runner heartbeats and long polls."""

from __future__ import annotations

import logging

import httpx
import pytest

from clawfleet.domain.lifecycle import InstancePhase
from clawfleet.schemas.agents import AgentIn
from clawfleet.server import SYSTEM, ControlPlane
from tests.factories import agent


async def test_routine_runner_calls_are_logged_at_debug_and_their_errors_at_info(
    plane: ControlPlane, anon: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    state = plane.app.state.api
    await state.resources.apply(SYSTEM, AgentIn.model_validate(agent("a")))
    row = await state.instances.create((await state.agents.all_agents())[0], "local")
    await state.instances.transition(row, InstancePhase.STARTING)
    _, token = await state.tokens.mint_runner(row.id, "default")
    base = f"/api/v1/runner/instances/{row.id}"
    headers = {"Authorization": f"Bearer {token}"}
    caplog.set_level(logging.DEBUG, logger="clawfleet.api.access")

    assert (await anon.post(f"{base}/register", headers=headers)).status_code == 200
    for _ in range(3):
        assert (await anon.post(f"{base}/heartbeat", json={}, headers=headers)).status_code == 200
    assert (await anon.post(f"{base}/claim", json={"wait": 0}, headers=headers)).status_code == 200
    assert (await anon.post(f"{base}/commands", json={"wait": 0}, headers=headers)).is_success
    missing = await anon.post(
        f"{base}/runs/r-nope/events", json={"events": [{"seq": 1, "type": "log"}]}, headers=headers
    )
    assert missing.status_code == 404
    refused = await anon.post(f"{base}/heartbeat", json={}, headers={"Authorization": "Bearer x"})
    assert refused.status_code == 401

    # "METHOD PATH STATUS ELAPSED": without the elapsed time
    at_info = [
        r.getMessage().rsplit(" ", 1)[0] for r in caplog.records if r.levelno >= logging.INFO
    ]
    assert at_info == [
        f"POST {base}/register 200",
        f"POST {base}/runs/r-nope/events 404",
        f"POST {base}/heartbeat 401",
    ]
    at_debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert len(at_debug) == 5
    assert all(" 200 " in line for line in at_debug)
