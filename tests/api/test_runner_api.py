"""A runner token works for its own instance's runner endpoints and nothing else."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from clawfleet.domain.lifecycle import InstancePhase
from clawfleet.schemas.agents import AgentIn
from clawfleet.schemas.base import OutModel
from clawfleet.schemas.runner import (
    AckOut,
    ClaimOut,
    CommandsOut,
    CompleteOut,
    EventsPostOut,
    HeartbeatOut,
    RegisterOut,
)
from clawfleet.server import SYSTEM, ControlPlane
from tests.factories import agent


@pytest.fixture
async def runner_setup(plane: ControlPlane) -> tuple[str, str, str]:
    state = plane.app.state.api
    await state.resources.apply(SYSTEM, AgentIn.model_validate(agent("a")))
    record = (await state.agents.all_agents())[0]
    ids = []
    for _ in range(2):
        row = await state.instances.create(record, "local")
        await state.instances.transition(row, InstancePhase.STARTING)
        ids.append(row.id)
    _, token = await state.tokens.mint_runner(ids[0], "default")
    return ids[0], ids[1], token


async def test_runner_token_is_scoped_to_its_instance(
    anon: httpx.AsyncClient, runner_setup: tuple[str, str, str]
) -> None:
    mine, other, token = runner_setup
    headers = {"Authorization": f"Bearer {token}"}
    base = "/api/v1/runner/instances"
    registered = await anon.post(f"{base}/{mine}/register", headers=headers)
    assert registered.status_code == 200, registered.text
    assert registered.json()["bundle"]["adapter"] == "command"
    assert (
        await anon.post(f"{base}/{mine}/heartbeat", json={}, headers=headers)
    ).status_code == 200
    for path in ("register", "heartbeat", "claim", "commands"):
        refused = await anon.post(f"{base}/{other}/{path}", json={}, headers=headers)
        assert refused.status_code == 403, path
    for method, path in [
        ("GET", "/api/v1/agents"),
        ("GET", "/api/v1/secrets"),
        ("GET", "/api/v1/tasks"),
        ("GET", "/api/v1/instances"),
        ("POST", "/api/v1/apply"),
        ("GET", "/api/v1/tenants/default"),
    ]:
        response = await anon.request(
            method, path, headers=headers, json={} if method == "POST" else None
        )
        assert response.status_code in (403, 422), (method, path, response.status_code)
        if response.status_code == 422:  # body validation ran first; still nothing was done
            assert (await anon.get("/api/v1/agents", headers=headers)).status_code == 403


async def test_events_for_a_run_of_another_instance_are_refused(
    plane: ControlPlane, anon: httpx.AsyncClient, runner_setup: tuple[str, str, str]
) -> None:
    mine, _, token = runner_setup
    headers = {"Authorization": f"Bearer {token}"}
    response = await anon.post(
        f"/api/v1/runner/instances/{mine}/runs/r-nope/events",
        json={"events": [{"seq": 1, "type": "log", "data": {}}]},
        headers=headers,
    )
    assert response.status_code == 404


async def test_revoked_runner_token_is_refused(
    plane: ControlPlane, anon: httpx.AsyncClient, runner_setup: tuple[str, str, str]
) -> None:
    mine, _, _ = runner_setup
    token_id, token = await plane.app.state.api.tokens.mint_runner(mine, "default")
    await plane.app.state.api.tokens.revoke(token_id)
    response = await anon.post(
        f"/api/v1/runner/instances/{mine}/heartbeat",
        json={},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 401


async def test_runner_answers_have_the_documented_shape(
    api: httpx.AsyncClient, anon: httpx.AsyncClient, runner_setup: tuple[str, str, str]
) -> None:
    """The hot routes return plain documents; they must match the models the OpenAPI shows."""
    mine, _, token = runner_setup
    headers = {"Authorization": f"Bearer {token}"}
    base = f"/api/v1/runner/instances/{mine}"

    async def call(path: str, model: type[OutModel], body: object = None) -> Any:
        response = await anon.post(f"{base}/{path}", json=body or {}, headers=headers)
        assert response.status_code == 200, response.text
        return model.model_validate(response.json())

    await call("register", RegisterOut)
    task = {"kind": "Task", "spec": {"agent": "a", "prompt": "hi"}}
    assert (await api.post("/api/v1/tasks", json=task)).status_code == 201
    claimed = await call("claim", ClaimOut, {"max": 1, "wait": 0})
    run = claimed.runs[0].id
    await call("heartbeat", HeartbeatOut, {"activeRuns": [run]})
    await call("commands", CommandsOut, {"wait": 0})
    await call("commands/ack", AckOut, {"ids": []})
    events = {"events": [{"seq": 1, "type": "message", "data": {"text": "x"}}]}
    assert (await call(f"runs/{run}/events", EventsPostOut, events)).last_seq == 2
    done = await call(f"runs/{run}/complete", CompleteOut, {"status": "succeeded"})
    assert (done.state, done.recorded) == ("succeeded", True)
