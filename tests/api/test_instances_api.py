"""The instances API: listing pages without losing items, and typed responses."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from clawfleet.schemas.agents import AgentIn
from clawfleet.server import SYSTEM, ControlPlane
from tests.factories import agent, project, tenant


async def make_instance(plane: ControlPlane, name: str, tenant_: str, project_: str) -> None:
    state = plane.app.state.api
    await state.resources.apply(
        SYSTEM, AgentIn.model_validate(agent(name, tenant=tenant_, project=project_))
    )
    record = next(
        a for a in await state.agents.all_agents()
        if (a.key.tenant, a.key.project, a.key.name) == (tenant_, project_, name)
    )  # fmt: skip
    await state.instances.create(record, "local")


async def list_all(api: httpx.AsyncClient, **params: Any) -> list[str]:
    names: list[str] = []
    cursor = None
    for _ in range(20):
        query = {**params, **({"continue": cursor} if cursor else {})}
        response = await api.get("/api/v1/instances", params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        names += [item["metadata"]["name"] for item in body["items"]]
        cursor = body["metadata"]["continue"]
        if cursor is None:
            return names
    pytest.fail("the listing did not end")


@pytest.mark.parametrize("limit", [1, 2])
async def test_paging_across_projects_and_tenants_returns_every_instance(
    plane: ControlPlane, api: httpx.AsyncClient, limit: int
) -> None:
    """B3: the cursor held only the name, so a page that crossed a project lost items."""
    for doc in (project("aaa"), project("bbb"), tenant("other"), project("aaa", "other")):
        assert (await api.post("/api/v1/apply", json=doc)).status_code == 201
    await make_instance(plane, "zed", "default", "aaa")
    await make_instance(plane, "zed", "default", "aaa")
    await make_instance(plane, "alpha", "default", "bbb")
    projects = await list_all(api, allProjects="true", limit=limit)
    assert len(projects) == 3
    assert sorted(name.split("-")[0] for name in projects) == ["alpha", "zed", "zed"]
    await make_instance(plane, "beta", "other", "aaa")
    everywhere = await list_all(api, allTenants="true", limit=limit)
    assert len(everywhere) == 4
    assert len(set(everywhere)) == 4


async def test_a_malformed_continue_token_is_a_422(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/instances", params={"continue": "not-a-token"})
    assert response.status_code == 422
    assert "continue" in response.json()["detail"]


async def test_the_openapi_document_describes_the_instance_routes(api: httpx.AsyncClient) -> None:
    doc = (await api.get("/api/v1/openapi.json")).json()
    for path, method in [
        ("/api/v1/instances", "get"),
        ("/api/v1/instances/{name}", "get"),
        ("/api/v1/instances/{name}/restart", "post"),
        ("/api/v1/instances/{name}/stop", "post"),
        ("/api/v1/instances/{name}/logs", "get"),
        ("/api/v1/agents/{name}/scale", "post"),
        ("/api/v1/agents/{name}/sleep", "post"),
        ("/api/v1/agents/{name}/wake", "post"),
        ("/api/v1/agents/{name}/events", "get"),
    ]:
        content = doc["paths"][path][method]["responses"]["200"]["content"]
        schema = next(iter(content.values()))["schema"]
        assert schema.get("$ref") or schema.get("type") == "string", (path, schema)
    instance = doc["components"]["schemas"]["InstanceOut"]
    assert set(instance["properties"]) == {"apiVersion", "kind", "metadata", "spec", "status"}
    spec = doc["components"]["schemas"]["InstanceSpecOut"]
    assert "revision" in spec["properties"]


async def test_an_instance_reads_back_in_wire_form(
    plane: ControlPlane, api: httpx.AsyncClient
) -> None:
    await make_instance(plane, "zed", "default", "default")
    [item] = (await api.get("/api/v1/instances")).json()["items"]
    assert item["kind"] == "Instance"
    assert item["metadata"]["labels"] == {"clawfleet.dev/agent": "zed"}
    assert item["metadata"]["createdAt"].endswith("Z")
    assert item["spec"] == {"agent": "zed", "agentGeneration": 1, "revision": "",
                            "runtime": "local"}  # fmt: skip
    assert item["status"]["phase"] == "Pending"
    assert item["status"]["ref"] is None
    detail = (await api.get(f"/api/v1/instances/{item['metadata']['name']}")).json()
    assert detail["events"] == []
    assert {k: v for k, v in detail.items() if k != "events"} == item
