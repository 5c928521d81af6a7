"""Deleting tenants and projects: what blocks it, what goes with it, on both databases."""

from __future__ import annotations

import httpx

from tests.factories import tenant

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
