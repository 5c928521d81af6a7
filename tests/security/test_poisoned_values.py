"""One task's or one agent's values must never break the fleet for others: the poisoned queue
(a timeout too large for a deadline blocked its agent for good) and the quota bypass (a quantity
of 400 digits made every quota check pass and every usage report fail), through the API, and for
records stored before the bounds existed."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import update

from clawfleet.domain.lifecycle import InstancePhase
from clawfleet.schemas.agents import AgentIn
from clawfleet.server import SYSTEM, ControlPlane
from clawfleet.store import tables
from tests.factories import agent, project, tenant


async def _runner(plane: ControlPlane) -> tuple[str, dict[str, str]]:
    state = plane.app.state.api
    await state.resources.apply(SYSTEM, AgentIn.model_validate(agent("a")))
    record = (await state.agents.all_agents())[0]
    row = await state.instances.create(record, "local")
    await state.instances.transition(row, InstancePhase.STARTING)
    _, token = await state.tokens.mint_runner(row.id, "default")
    return f"/api/v1/runner/instances/{row.id}", {"Authorization": f"Bearer {token}"}


def _task(name: str, **spec: object) -> dict[str, object]:
    return {
        "kind": "Task",
        "metadata": {"name": name},
        "spec": {"agent": "a", "prompt": name, **spec},
    }


async def _claim(anon: httpx.AsyncClient, base: str, headers: dict[str, str]) -> list[str]:
    response = await anon.post(f"{base}/claim", json={"max": 10, "wait": 0}, headers=headers)
    assert response.status_code == 200, response.text
    return [run["prompt"] for run in response.json()["runs"]]


async def test_a_hostile_timeout_is_refused_and_the_next_task_runs(
    plane: ControlPlane, api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    base, headers = await _runner(plane)
    assert (await anon.post(f"{base}/register", headers=headers)).status_code == 200
    hostile = await api.post("/api/v1/tasks", json=_task("poison", timeout="999999999999999s"))
    assert hostile.status_code == 422
    assert hostile.json()["errors"][0]["path"] == "spec.timeout"
    assert (await api.post("/api/v1/tasks", json=_task("normal"))).status_code == 201
    assert await _claim(anon, base, headers) == ["normal"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # PostgreSQL's column is 32-bit
async def test_a_timeout_stored_before_the_bound_does_not_block_the_queue(
    plane: ControlPlane, api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    base, headers = await _runner(plane)
    assert (await anon.post(f"{base}/register", headers=headers)).status_code == 200
    assert (await api.post("/api/v1/tasks", json=_task("poison", timeout="60s"))).status_code == 201
    assert (await api.post("/api/v1/tasks", json=_task("normal"))).status_code == 201
    async with plane.db.write() as conn:  # as an older server stored it
        await conn.execute(
            update(tables.tasks)
            .where(tables.tasks.c.name == "poison")
            .values(timeout_seconds=999_999_999_999_999)
        )
    assert await _claim(anon, base, headers) == ["poison", "normal"]
    runs = (await api.get("/api/v1/runs")).json()["items"]
    assert {run["status"]["state"] for run in runs} == {"running"}


async def _acme(api: httpx.AsyncClient, **quota: object) -> None:
    doc = tenant("acme")
    doc["spec"]["quota"] = quota
    assert (await api.post("/api/v1/apply", json=doc)).status_code in (200, 201)
    assert (await api.post("/api/v1/apply", json=project("web", "acme"))).status_code in (200, 201)


SCOPE = {"tenant": "acme", "project": "web"}


async def test_a_quantity_of_400_digits_cannot_bypass_a_quota(api: httpx.AsyncClient) -> None:
    await _acme(api, cpu="2", memory="1Gi")
    for field in ("cpu", "memory"):
        zero = agent("zero", replicas=0, resources={field: "9" * 400})
        refused = await api.post("/api/v1/agents", params=SCOPE, json=zero)
        assert refused.status_code == 422
        assert refused.json()["errors"][0]["path"] == f"spec.resources.{field}"
    big = agent("big", replicas=3, resources={"cpu": "1", "memory": "256Mi"})
    assert (await api.post("/api/v1/agents", params=SCOPE, json=big)).status_code == 403
    assert (await api.get("/api/v1/tenants/acme")).status_code == 200


async def test_a_quantity_stored_before_the_bound_counts_as_the_maximum(
    plane: ControlPlane, api: httpx.AsyncClient
) -> None:
    await _acme(api, cpu="2")
    zero = agent("zero", replicas=0, resources={"cpu": "1"})
    assert (await api.post("/api/v1/agents", params=SCOPE, json=zero)).status_code == 201
    stored = {**zero["spec"], "replicas": 1, "resources": {"cpu": "9" * 400}}
    async with plane.db.write() as conn:  # as an older server stored it
        await conn.execute(
            update(tables.resources).where(tables.resources.c.name == "zero").values(spec=stored)
        )
    # Reading the tenant and its project works, with finite numbers...
    for path, params in (
        ("/api/v1/tenants/acme", {}),
        ("/api/v1/projects/web", {"tenant": "acme"}),
    ):
        got = await api.get(path, params=params)
        assert got.status_code == 200, got.text
        assert got.json()["status"]["usage"]["cpu"]["used"] == 1e18
    # ...and the quota still holds: the unreadable request counts as the most it could be.
    more = agent("more", resources={"cpu": "1"})
    refused = await api.post("/api/v1/agents", params=SCOPE, json=more)
    assert refused.status_code == 403 and refused.json()["code"] == "quota-exceeded"


async def test_a_quota_of_10_to_the_400_stored_before_the_bound_does_not_break_creates(
    plane: ControlPlane, api: httpx.AsyncClient
) -> None:
    await _acme(api, agents=5)
    async with plane.db.write() as conn:  # as an older server stored it
        await conn.execute(
            update(tables.resources)
            .where(tables.resources.c.kind == "Tenant", tables.resources.c.name == "acme")
            .values(spec={"quota": {"agents": 10**400, "instances": 10**400}})
        )
    created = await api.post("/api/v1/agents", params=SCOPE, json=agent("x"))
    assert created.status_code == 201, created.text
    assert (await api.get("/api/v1/tenants/acme")).status_code == 200
