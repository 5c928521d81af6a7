"""Deleting tenants and projects: what blocks it, what goes with it, on both databases."""

from __future__ import annotations

import httpx

from tests.api.test_identity_api import login, make_user
from tests.factories import agent, project, secret, tenant

ACME = {"tenant": "acme"}


async def _service_account_key(api: httpx.AsyncClient, name: str = "ci") -> dict[str, str]:
    created = await api.post("/api/v1/serviceaccounts", params=ACME, json={"name": name})
    assert created.status_code == 201, created.text
    key = await api.post(f"/api/v1/serviceaccounts/{name}/keys", params=ACME, json={})
    assert key.status_code == 201, key.text
    return {"Authorization": f"Bearer {key.json()['key']}"}


async def test_deleting_a_tenant_ends_its_service_accounts_and_their_keys(
    api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    assert (await api.post("/api/v1/tenants", json=tenant("acme"))).status_code == 201
    key = await _service_account_key(api)
    assert (await anon.get("/api/v1/whoami", headers=key)).status_code == 200

    assert (await api.delete("/api/v1/tenants/acme")).status_code == 200

    assert (await anon.get("/api/v1/whoami", headers=key)).status_code == 401
    listed = await api.get("/api/v1/serviceaccounts", params=ACME)
    assert listed.status_code == 200 and listed.json()["items"] == []
    audit = (await api.get("/api/v1/audit", params={"kind": "Tenant"})).json()["items"]
    assert audit[0]["verb"] == "delete" and audit[0]["details"]["serviceAccounts"] == ["ci"]


async def test_a_new_tenant_of_the_same_name_inherits_no_keys(
    api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    await api.post("/api/v1/tenants", json=tenant("acme"))
    old_key = await _service_account_key(api)
    await api.delete("/api/v1/tenants/acme")

    await api.post("/api/v1/tenants", json=tenant("acme"))
    await api.post("/api/v1/serviceaccounts", params=ACME, json={"name": "ci"})

    again = (await api.get("/api/v1/serviceaccounts", params=ACME)).json()["items"]
    assert [(sa["name"], sa["keys"]) for sa in again] == [("ci", [])]
    assert (await anon.get("/api/v1/whoami", headers=old_key)).status_code == 401


async def test_a_blocked_tenant_delete_names_the_kinds_that_block_it(
    api: httpx.AsyncClient,
) -> None:
    await api.post("/api/v1/tenants", json=tenant("acme"))
    binding = {
        "kind": "RoleBinding",
        "metadata": {"name": "alice-dev", "tenant": "acme"},
        "spec": {"role": "developer", "subjects": [{"kind": "User", "name": "alice"}]},
    }
    assert (await api.post("/api/v1/apply", json=binding)).status_code == 201

    blocked = await api.delete("/api/v1/tenants/acme")

    assert blocked.status_code == 409 and blocked.json()["code"] == "has-dependents"
    assert blocked.json()["detail"] == (
        "tenant 'acme' still has 1 RoleBinding; delete it first "
        "(`clawfleet get rolebindings --tenant acme`)"
    )


async def test_the_hint_lists_every_blocking_kind_and_looks_in_every_project(
    api: httpx.AsyncClient,
) -> None:
    await api.post("/api/v1/tenants", json=tenant("acme"))
    for name in ("web", "ops"):
        await api.post("/api/v1/projects", json=project(name, tenant="acme"))
    await api.post("/api/v1/agents", json=agent("a1", tenant="acme", project="web"))

    blocked = (await api.delete("/api/v1/tenants/acme")).json()["detail"]

    assert blocked == (
        "tenant 'acme' still has 2 Projects and 1 Agent; delete them first "
        "(`clawfleet get projects,agents --tenant acme --all-projects`)"
    )


async def test_a_blocked_project_delete_names_what_it_holds(api: httpx.AsyncClient) -> None:
    await api.post("/api/v1/tenants", json=tenant("acme"))
    await api.post("/api/v1/projects", json=project("web", tenant="acme"))
    await api.post("/api/v1/secrets", json=secret("s1", "acme", "web", k="v"))
    await api.post("/api/v1/secrets", json=secret("s2", "acme", "web", k="v"))

    blocked = await api.delete("/api/v1/projects/web", params=ACME)

    assert blocked.status_code == 409 and blocked.json()["code"] == "has-dependents"
    assert blocked.json()["detail"] == (
        "project 'web' still has 2 Secrets; delete them first "
        "(`clawfleet get secrets --tenant acme --project web`)"
    )


async def test_a_service_account_needs_its_tenant_to_exist(
    api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    refused = await api.post("/api/v1/serviceaccounts", params=ACME, json={"name": "ci"})

    assert refused.status_code == 404 and refused.json()["code"] == "not-found"
    assert "tenant 'acme' not found" in refused.json()["detail"]
    # nothing waits for a tenant of that name to come
    await api.post("/api/v1/tenants", json=tenant("acme"))
    assert (await api.get("/api/v1/serviceaccounts", params=ACME)).json()["items"] == []


async def test_nothing_of_a_deleted_tenant_passes_to_a_new_one_of_the_same_name(
    api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    await make_user(api)
    await api.post("/api/v1/tenants", json=tenant("acme"))
    old_key = await _service_account_key(api)
    binding = {
        "kind": "RoleBinding",
        "metadata": {"name": "grants", "tenant": "acme"},
        "spec": {
            "role": "developer",
            "subjects": [
                {"kind": "User", "name": "alice"},
                {"kind": "ServiceAccount", "name": "ci"},
            ],
        },
    }
    assert (await api.post("/api/v1/apply", json=binding)).status_code == 201
    await api.delete("/api/v1/rolebindings/grants", params=ACME)
    assert (await api.delete("/api/v1/tenants/acme")).status_code == 200
    assert (await anon.get("/api/v1/whoami", headers=old_key)).status_code == 401
    # a deleted tenant takes no new service accounts either
    late = await api.post("/api/v1/serviceaccounts", params=ACME, json={"name": "ci"})
    assert late.status_code == 404

    await api.post("/api/v1/tenants", json=tenant("acme"))
    await api.post("/api/v1/projects", json=project("web", tenant="acme"))
    new_key = await _service_account_key(api)

    assert (await anon.get("/api/v1/whoami", headers=old_key)).status_code == 401
    session = (await login(anon, "alice")).json()
    alice = {"Authorization": f"Bearer {session['accessToken']}"}
    for headers in (alice, new_key):
        me = (await anon.get("/api/v1/whoami", headers=headers)).json()
        assert me["bindings"] == []
        agents = await anon.get(
            "/api/v1/agents", params={**ACME, "project": "web"}, headers=headers
        )
        assert agents.status_code == 404
