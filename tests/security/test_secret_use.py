"""Handing a secret to a program is reading it: who may name a secret in an Agent's secretEnv.

An operator may create and change agents but not read secrets, so it may not name one in
``secretEnv`` (its program could print the value) unless the secret allows the agent in
``spec.allowedAgents``; a tenant admin may. A refusal is a 403 naming the field, stores nothing
and is audited as denied; scaling an agent a tenant admin set up still works.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from clawfleet.server import ControlPlane
from tests.factories import agent, project, secret, tenant

PASSWORD = "secret use password 1234"
WHERE = {"tenant": "acme", "project": "web"}


def _agent(name: str, **spec: Any) -> dict[str, Any]:
    env = {"API_KEY": {"secret": "llm", "key": "token"}}
    return agent(name, tenant="acme", project="web", secretEnv=env, **spec)


def _secret(**spec: Any) -> dict[str, Any]:
    doc = secret("llm", "acme", "web", token="sk-the-real-one-1234")
    doc["spec"].update(spec)
    return doc


@pytest.fixture
async def clients(
    plane: ControlPlane, api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """An operator and a tenant admin of acme, each with a client; the admin's is ``api``."""
    for doc in (tenant("acme"), project("web", tenant="acme")):
        assert (await api.post("/api/v1/apply", json=doc)).status_code == 201
    async with contextlib.AsyncExitStack() as stack:
        found = {"admin": api}
        for role in ("operator", "tenant-admin"):
            user = {"name": role, "password": PASSWORD}
            assert (await api.post("/api/v1/users", json=user)).status_code == 201
            subject = {"kind": "User", "name": role}
            binding = {"kind": "RoleBinding", "metadata": {"name": role, "tenant": "acme"},
                       "spec": {"role": role, "subjects": [subject]}}  # fmt: skip
            assert (await api.post("/api/v1/apply", json=binding)).status_code == 201
            session = await anon.post(
                "/api/v1/auth/login", json={"username": role, "password": PASSWORD}
            )
            found[role] = await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=plane.app),
                    base_url="http://clawfleet.test",
                    headers={"Authorization": f"Bearer {session.json()['accessToken']}"},
                )
            )
        yield found


async def _denials(api: httpx.AsyncClient, user: str) -> list[tuple[str, str, str, str]]:
    entries = (await api.get("/api/v1/audit", params={"user": user})).json()["items"]
    return [(e["verb"], e["kind"], e["name"], e["details"].get("reason", ""))
            for e in entries if e["outcome"] == "denied"]  # fmt: skip


async def test_an_operator_may_not_hand_a_secret_it_cannot_read_to_its_agent(
    clients: dict[str, httpx.AsyncClient],
) -> None:
    operator, admin = clients["operator"], clients["tenant-admin"]
    assert (await admin.post("/api/v1/apply", json=_secret())).status_code == 201
    for method, path in (("POST", "/api/v1/apply"), ("POST", "/api/v1/agents")):
        refused = await operator.request(method, path, json=_agent("leaky"))
        assert refused.status_code == 403, refused.text
        problem = refused.json()
        assert problem["code"] == "forbidden"
        assert problem["detail"].startswith("spec.secretEnv.API_KEY: ")
        assert "tenant admin" in problem["detail"] and "spec.allowedAgents" in problem["detail"]
    # Nothing was stored, and both refusals are in the audit log.
    assert (await operator.get("/api/v1/agents/leaky", params=WHERE)).status_code == 404
    assert await _denials(clients["admin"], "user:operator") == [
        ("create", "Agent", "leaky", "forbidden"),
        ("create", "Agent", "leaky", "forbidden"),
    ]
    # A secret that does not exist cannot be named by an operator either.
    ghost = _agent("ghostly")
    ghost["spec"]["secretEnv"] = {"API_KEY": {"secret": "ghost", "key": "token"}}
    missing = await operator.post("/api/v1/apply", json=ghost)
    assert missing.status_code == 403
    assert "does not exist yet" in missing.json()["detail"]


async def test_a_tenant_admin_may_and_the_secret_may_allow_named_agents(
    clients: dict[str, httpx.AsyncClient],
) -> None:
    operator, admin = clients["operator"], clients["tenant-admin"]
    assert (await admin.post("/api/v1/apply", json=_secret())).status_code == 201
    assert (await admin.post("/api/v1/apply", json=_agent("by-admin"))).status_code == 201
    # A tenant admin may still name a secret that does not exist yet.
    early = _agent("early")
    early["spec"]["secretEnv"] = {"API_KEY": {"secret": "later", "key": "token"}}
    assert (await admin.post("/api/v1/apply", json=early)).status_code == 201
    # The operator may not widen the secret itself.
    widen = _secret(allowedAgents=["by-operator"])
    assert (await operator.post("/api/v1/apply", json=widen)).status_code == 403
    assert (await operator.post("/api/v1/apply", json=_agent("by-operator"))).status_code == 403
    # Once the secret names the agent, the operator may apply it; other agents stay refused.
    assert (await admin.post("/api/v1/apply", json=widen)).status_code == 200
    stored = await admin.get("/api/v1/secrets/llm", params=WHERE)
    assert stored.json()["spec"]["allowedAgents"] == ["by-operator"]
    assert (await operator.post("/api/v1/apply", json=_agent("by-operator"))).status_code == 201
    assert (await operator.post("/api/v1/apply", json=_agent("another"))).status_code == 403
    # "*" allows every agent of the project.
    assert (await admin.post("/api/v1/apply", json=_secret(allowedAgents=["*"]))).status_code == 200
    assert (await operator.post("/api/v1/apply", json=_agent("another"))).status_code == 201


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_an_operator_may_scale_but_not_reprogram_a_tenant_admins_agent(
    clients: dict[str, httpx.AsyncClient],
) -> None:
    operator, admin = clients["operator"], clients["tenant-admin"]
    assert (await admin.post("/api/v1/apply", json=_secret())).status_code == 201
    assert (await admin.post("/api/v1/apply", json=_agent("worker"))).status_code == 201
    # Scaling, sleeping and waking hand nothing new to any program.
    scaled = await operator.post("/api/v1/agents/worker/scale", params=WHERE, json={"replicas": 3})
    assert scaled.status_code == 200, scaled.text
    assert (await operator.post("/api/v1/agents/worker/sleep", params=WHERE)).status_code == 200
    assert (await operator.post("/api/v1/agents/worker/wake", params=WHERE)).status_code == 200
    # Re-applying it unchanged, or with only replicas changed, passes.
    again = await operator.post("/api/v1/apply", json=_agent("worker", replicas=3))
    assert again.status_code == 200, again.text
    resized = await operator.put("/api/v1/agents/worker", json=_agent("worker", replicas=2))
    assert resized.status_code == 200, resized.text
    # A new command could print the secret: refused, and the stored agent is as it was.
    before = (await admin.get("/api/v1/agents/worker", params=WHERE)).json()
    changed = _agent("worker", replicas=2, command=["sh", "-c", "echo $API_KEY | rev"])
    for method, path in (("POST", "/api/v1/apply"), ("PUT", "/api/v1/agents/worker")):
        refused = await operator.request(method, path, json=changed)
        assert refused.status_code == 403, refused.text
        assert refused.json()["detail"].startswith("spec.secretEnv.API_KEY: ")
    assert (await admin.get("/api/v1/agents/worker", params=WHERE)).json() == before
    assert await _denials(clients["admin"], "user:operator") == [
        ("update", "Agent", "worker", "forbidden"),
        ("update", "Agent", "worker", "forbidden"),
    ]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_allowed_agents_are_agent_names_or_a_star(api: httpx.AsyncClient) -> None:
    for doc in (tenant("acme"), project("web", tenant="acme")):
        await api.post("/api/v1/apply", json=doc)
    bad = await api.post("/api/v1/apply", json=_secret(allowedAgents=["ok", "Not_A_Name"]))
    assert bad.status_code == 422
    assert [e["path"] for e in bad.json()["errors"]] == ["spec.allowedAgents.1"]
    assert (await api.get("/api/v1/secrets/llm", params=WHERE)).status_code == 404
