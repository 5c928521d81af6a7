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
        a for a in await state.resources.all_of_kind("Agent")
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
