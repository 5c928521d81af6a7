"""Every mutation is audited in its own transaction; refusals are audited as denied."""

from __future__ import annotations

import httpx

from tests.api.test_identity_api import PASSWORD, login, make_user
from tests.factories import agent, secret

VALUE = "audit-planted-secret-value-93c1"


async def test_mutations_are_audited_with_their_principal(api: httpx.AsyncClient) -> None:
    await api.post("/api/v1/agents", json=agent("a1"))
    doc = agent("a1", replicas=4)
    await api.post("/api/v1/apply", json=doc)
    await api.post("/api/v1/apply", json=doc)  # unchanged: nothing to audit
    await api.post("/api/v1/secrets", json=secret("s1", token=VALUE))
    await api.post("/api/v1/apply", json=secret("s1", token=VALUE + "-2"))
    await api.post("/api/v1/tasks", json={"spec": {"agent": "a1", "prompt": "hi"}})
    await api.delete("/api/v1/agents/a1")
    # (the bootstrap tenant and project were created by "system")
    entries = (await api.get("/api/v1/audit", params={"user": "admin"})).json()["items"]
    seen = [(e["verb"], e["kind"], e["name"]) for e in reversed(entries)]
    assert seen[:6] == [
        ("create", "Agent", "a1"),
        ("update", "Agent", "a1"),
        ("create", "Secret", "s1"),
        ("update", "Secret", "s1"),
        ("create", "Task", seen[4][2]),
        ("delete", "Agent", "a1"),
    ]
    assert {e["principal"] for e in entries} == {"admin"}
    assert all(e["outcome"] == "allowed" for e in entries)
    update = next(e for e in entries if e["verb"] == "update" and e["kind"] == "Agent")
    assert update["details"]["fields"] == ["spec.replicas"]
    secret_update = next(e for e in entries if e["verb"] == "update" and e["kind"] == "Secret")
    assert secret_update["details"]["keys"] == ["token"]
    assert VALUE not in str(entries)


async def test_denied_attempts_are_audited(api: httpx.AsyncClient, anon: httpx.AsyncClient) -> None:
    await make_user(api, "eve")
    token = (await login(anon, "eve", PASSWORD)).json()["accessToken"]
    headers = {"Authorization": f"Bearer {token}"}
    refused = await anon.post("/api/v1/agents", json=agent("x"), headers=headers)
    assert refused.status_code == 404  # no role anywhere: not even visible
    entries = (await api.get("/api/v1/audit", params={"user": "user:eve"})).json()["items"]
    assert [(e["verb"], e["kind"], e["outcome"]) for e in entries] == [
        ("create", "Agent", "denied")
    ]
    assert entries[0]["details"]["reason"] == "not-found"
    # eve may not read the audit log either
    assert (await anon.get("/api/v1/audit", headers=headers)).status_code == 404
