"""Quotas on tenants and projects: refused at admission with the numbers, visible in usage."""

from __future__ import annotations

import httpx
import pytest

from clawfleet.core.errors import ConfigurationError
from clawfleet.core.settings import Settings
from clawfleet.domain.kinds import find_kind
from clawfleet.domain.lifecycle import InstancePhase
from clawfleet.schemas.tasks import TaskIn
from clawfleet.server import SYSTEM, ControlPlane, build_control_plane
from clawfleet.testing.clock import FakeClock
from tests.factories import agent, project, tenant


async def setup_acme(api: httpx.AsyncClient, **quota: object) -> None:
    doc = tenant("acme")
    doc["spec"]["quota"] = quota
    assert (await api.post("/api/v1/apply", json=doc)).status_code in (200, 201)
    await api.post("/api/v1/apply", json=project("web", tenant="acme"))


async def test_instance_quota_refuses_the_fourth_and_raising_it_lets_it_scale(
    api: httpx.AsyncClient,
) -> None:
    await setup_acme(api, instances=3)
    scope = {"tenant": "acme", "project": "web"}
    created = await api.post("/api/v1/agents", params=scope, json=agent("a1", replicas=3))
    assert created.status_code == 201
    refused = await api.post("/api/v1/agents/a1/scale", params=scope, json={"replicas": 4})
    assert refused.status_code == 403
    problem = refused.json()
    assert problem["code"] == "quota-exceeded"
    assert "tenant 'acme' allows instances 3; 3 in use" in problem["detail"]
    assert "asks for 1 more" in problem["detail"]
    assert (await api.get("/api/v1/agents/a1", params=scope)).json()["spec"]["replicas"] == 3
    other = await api.post("/api/v1/agents", params=scope, json=agent("a2", replicas=1))
    assert other.status_code == 403  # a new agent counts against the same quota
    audit = (await api.get("/api/v1/audit", params={"tenant": "acme"})).json()["items"]
    denials = [(e["verb"], e["name"], e["details"]) for e in audit if e["outcome"] == "denied"]
    assert ("create", "a2", {"reason": "quota-exceeded"}) in denials
    assert ("update", "a1", {"reason": "quota-exceeded"}) in denials
    await setup_acme(api, instances=5)
    scaled = await api.post("/api/v1/agents/a1/scale", params=scope, json={"replicas": 4})
    assert scaled.status_code == 200
    usage = (await api.get("/api/v1/tenants/acme")).json()["status"]["usage"]
    assert usage["instances"] == {"used": 4, "limit": 5}
    assert usage["agents"]["used"] == 1


async def test_project_quota_and_resources(api: httpx.AsyncClient) -> None:
    await setup_acme(api, cpu="2", memory="1Gi")
    doc = project("web", tenant="acme")
    doc["spec"]["quota"] = {"agents": 1}
    await api.post("/api/v1/apply", json=doc)
    scope = {"tenant": "acme", "project": "web"}
    big = agent("big", replicas=3, resources={"cpu": "1", "memory": "256Mi"})
    refused = await api.post("/api/v1/agents", params=scope, json=big)
    assert refused.status_code == 403 and "allows cpu 2; 0 in use" in refused.json()["detail"]
    small = agent("small", replicas=2, resources={"cpu": "500m", "memory": "256Mi"})
    assert (await api.post("/api/v1/agents", params=scope, json=small)).status_code == 201
    second = await api.post("/api/v1/agents", params=scope, json=agent("more"))
    assert second.status_code == 403
    assert "project 'web' allows agents 1" in second.json()["detail"]
    usage = (await api.get("/api/v1/projects/web", params={"tenant": "acme"})).json()["status"][
        "usage"
    ]
    assert usage["cpu"] == {"used": 1.0, "limit": None}


async def test_concurrent_runs_quota_holds_at_claim(
    plane: ControlPlane, api: httpx.AsyncClient
) -> None:
    await setup_acme(api, concurrentRuns=1)
    scope = {"tenant": "acme", "project": "web"}
    await api.post("/api/v1/agents", params=scope, json=agent("a1"))
    state = plane.app.state.api
    record = next(a for a in await state.agents.all_agents() if a.key.name == "a1")
    row = await state.instances.create(record, "local")
    await state.instances.transition(row, InstancePhase.STARTING)
    await state.dispatcher.protocol.register(row.id)
    for prompt in ("one", "two"):
        body = {
            "metadata": {"tenant": "acme", "project": "web"},
            "spec": {"agent": "a1", "prompt": prompt},
        }
        await state.tasks.submit(SYSTEM, TaskIn.model_validate(body))
    claimed = await state.dispatcher.claims.claim(row.id, 5, 0)
    assert [c["prompt"] for c in claimed] == ["one"]
    assert await state.dispatcher.claims.claim(row.id, 5, 0) == []


async def test_tenant_admins_cannot_raise_their_own_quota(
    api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    from tests.api.test_identity_api import PASSWORD, login, make_user

    await setup_acme(api, instances=1)
    await make_user(api, "boss")
    subjects = [{"kind": "User", "name": "boss"}]
    binding = {
        "kind": "RoleBinding",
        "metadata": {"name": "boss", "tenant": "acme"},
        "spec": {"role": "tenant-admin", "subjects": subjects},
    }
    await api.post("/api/v1/apply", json=binding)
    headers = {
        "Authorization": f"Bearer {(await login(anon, 'boss', PASSWORD)).json()['accessToken']}"
    }
    raised = tenant("acme")
    raised["spec"]["quota"] = {"instances": 100}
    refused = await anon.post("/api/v1/apply", json=raised, headers=headers)
    assert refused.status_code == 403
    assert "only cluster admins" in refused.json()["detail"]
    same = tenant("acme", displayName="Acme")
    same["spec"]["quota"] = {"instances": 1}
    allowed = await anon.post("/api/v1/apply", json=same, headers=headers)
    assert allowed.status_code == 200  # other fields of its own tenant are fine


async def test_a_tenant_without_a_quota_gets_the_default_one(
    api: httpx.AsyncClient, plane: ControlPlane
) -> None:
    default = (await api.get("/api/v1/tenants/default")).json()
    assert default["spec"]["quota"] == {
        "agents": 100, "instances": 100, "concurrentRuns": 100, "storedBytes": "1Gi",
    }  # fmt: skip
    assert (await api.post("/api/v1/apply", json=tenant("acme"))).status_code == 201
    await api.post("/api/v1/apply", json=project("web", tenant="acme"))
    acme = (await api.get("/api/v1/tenants/acme")).json()
    assert acme["spec"]["quota"]["instances"] == 100
    assert acme["status"]["usage"]["instances"] == {"used": 0, "limit": 100}
    scope = {"tenant": "acme", "project": "web"}
    refused = await api.post("/api/v1/agents", params=scope, json=agent("big", replicas=101))
    assert refused.status_code == 403
    assert "tenant 'acme' allows instances 100" in refused.json()["detail"]
    # `quota: {}` says "no limits" in so many words.
    assert (await api.post("/api/v1/apply", json=tenant("acme", quota={}))).status_code == 200
    assert (await api.get("/api/v1/tenants/acme")).json()["spec"]["quota"] == {}
    created = await api.post("/api/v1/agents", params=scope, json=agent("big", replicas=101))
    assert created.status_code == 201


async def test_the_default_tenant_quota_is_a_setting(settings: Settings, clock: FakeClock) -> None:
    settings.quotas.tenant_default = {"agents": 2}
    plane = await build_control_plane(settings, clock)
    try:
        view = await plane.app.state.api.resources.get(SYSTEM, find_kind("Tenant"), "default")
        assert view["spec"]["quota"] == {"agents": 2}
    finally:
        await plane.db.close()
    settings.quotas.tenant_default = {"instances": "many"}
    with pytest.raises(ConfigurationError, match=r"quotas\.tenant_default\.instances"):
        await build_control_plane(settings, clock)
