"""Every endpoint x every role x own and other tenant, against the roles the issue defines.

The expectations below are written from the issue's role descriptions, not derived from the
policy module, so the two are checked against each other. A principal with no role in a tenant
gets 404 for everything there (guessing names or ids reveals nothing); a role that does not
allow an action gets 403. The table must cover every route of the app (checked first).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from clawfleet.domain.lifecycle import InstancePhase
from clawfleet.schemas.runner import CompleteIn
from clawfleet.schemas.tasks import TaskIn
from clawfleet.server import SYSTEM, ControlPlane
from tests.factories import agent, project, secret, tenant

PASSWORD = "matrix password 1234"
TENANTS = ("acme", "other")  # roles are bound in acme
ROLES = ("admin", "tenant-admin", "operator", "developer", "viewer", "nobody")
READ, WRITE = "read", "write"
WORK = {"Agent", "Instance", "Task", "Run"}


def may(role: str, action: str, kind: str) -> bool:
    """The issue's roles, in words made code."""
    read = action == READ
    if role == "admin":
        return True
    if kind in ("User", "Cluster"):
        return False
    if role == "tenant-admin":
        return kind != "TenantLifecycle"
    if role == "operator":
        return kind in WORK or (read and kind != "Audit")
    if role == "developer":
        return kind in ("Task", "Run") or (
            read and kind in ("Agent", "Instance", "Project", "Tenant")
        )
    if role == "viewer":
        return read and kind != "Audit"
    return False


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # with {tenant}-independent placeholders filled by ``fill``
    action: str
    kind: str
    body: Callable[[str, str], Any] | None = None  # (role, tenant) -> JSON
    ok: frozenset[int] = frozenset({200, 201})  # what "allowed" looks like here
    scoped: bool = True  # False: the same for every tenant (cluster-level)


def _agent(role: str, t: str) -> dict[str, Any]:
    return agent("a1", tenant=t, project="web")


ENDPOINTS = [
    Endpoint("GET", "/api/v1/tenants", READ, "Tenant", scoped=False),
    Endpoint("POST", "/api/v1/tenants", WRITE, "Cluster", lambda r, t: tenant(f"new-{r}"), scoped=False),
    Endpoint("GET", "/api/v1/tenants/{tenant}", READ, "Tenant"),
    Endpoint("PUT", "/api/v1/tenants/{tenant}", WRITE, "Tenant", lambda r, t: tenant(t)),
    Endpoint("DELETE", "/api/v1/tenants/{tenant}", WRITE, "TenantLifecycle", ok=frozenset({409})),
    Endpoint("GET", "/api/v1/projects", READ, "Project"),
    Endpoint("POST", "/api/v1/projects", WRITE, "Project", lambda r, t: project(f"p-{r}", tenant=t)),
    Endpoint("GET", "/api/v1/projects/web", READ, "Project"),
    Endpoint("PUT", "/api/v1/projects/web", WRITE, "Project", lambda r, t: project("web", tenant=t)),
    Endpoint("DELETE", "/api/v1/projects/web", WRITE, "Project", ok=frozenset({409})),
    Endpoint("GET", "/api/v1/rolebindings", READ, "RoleBinding"),
    Endpoint("POST", "/api/v1/rolebindings", WRITE, "RoleBinding", lambda r, t: {
        "kind": "RoleBinding", "metadata": {"name": f"rb-{r}", "tenant": t},
        "spec": {"role": "viewer", "subjects": [{"kind": "User", "name": "ghost"}]}}),
    Endpoint("GET", "/api/v1/rolebindings/members", READ, "RoleBinding", ok=frozenset({200, 404})),
    Endpoint("PUT", "/api/v1/rolebindings/ghost", WRITE, "RoleBinding", lambda r, t: {
        "kind": "RoleBinding", "metadata": {"name": "ghost", "tenant": t},
        "spec": {"role": "viewer", "subjects": [{"kind": "User", "name": "ghost"}]}}, ok=frozenset({404})),
    Endpoint("DELETE", "/api/v1/rolebindings/ghost", WRITE, "RoleBinding", ok=frozenset({404})),
    Endpoint("GET", "/api/v1/secrets", READ, "Secret"),
    Endpoint("POST", "/api/v1/secrets", WRITE, "Secret", lambda r, t: secret(f"s-{r}", t, "web", k="value-123456")),
    Endpoint("GET", "/api/v1/secrets/s1", READ, "Secret"),
    Endpoint("PUT", "/api/v1/secrets/s1", WRITE, "Secret", lambda r, t: secret("s1", t, "web", k="value-123456")),
    Endpoint("DELETE", "/api/v1/secrets/ghost", WRITE, "Secret", ok=frozenset({404})),
    Endpoint("GET", "/api/v1/agents", READ, "Agent"),
    Endpoint("POST", "/api/v1/agents", WRITE, "Agent", lambda r, t: agent(f"a-{r}", tenant=t, project="web")),
    Endpoint("GET", "/api/v1/agents/a1", READ, "Agent"),
    Endpoint("PUT", "/api/v1/agents/a1", WRITE, "Agent", _agent),
    Endpoint("DELETE", "/api/v1/agents/ghost", WRITE, "Agent", ok=frozenset({404})),
    Endpoint("POST", "/api/v1/agents/a1/scale", WRITE, "Agent", lambda r, t: {"replicas": 1}),
    Endpoint("POST", "/api/v1/agents/a1/sleep", WRITE, "Agent"),
    Endpoint("POST", "/api/v1/agents/a1/wake", WRITE, "Agent"),
    Endpoint("GET", "/api/v1/agents/a1/events", READ, "Agent"),
    Endpoint("POST", "/api/v1/apply", WRITE, "Agent", _agent),
    Endpoint("GET", "/api/v1/instances", READ, "Instance"),
    Endpoint("GET", "/api/v1/instances/{instance}", READ, "Instance"),
    Endpoint("GET", "/api/v1/instances/{instance}/logs", READ, "Instance"),
    Endpoint("POST", "/api/v1/instances/{instance}/restart", WRITE, "Instance"),
    Endpoint("POST", "/api/v1/instances/{instance}/stop", WRITE, "Instance"),
    Endpoint("GET", "/api/v1/tasks", READ, "Task"),
    Endpoint("POST", "/api/v1/tasks", WRITE, "Task", lambda r, t: {
        "metadata": {"tenant": t, "project": "web"}, "spec": {"agent": "a1", "prompt": "hi"}}),
    Endpoint("GET", "/api/v1/tasks/{task}", READ, "Task"),
    Endpoint("GET", "/api/v1/tasks/{task}/runs", READ, "Task"),
    Endpoint("GET", "/api/v1/tasks/{task}/wait", READ, "Task"),
    Endpoint("POST", "/api/v1/tasks/{pending}/cancel", WRITE, "Task"),
    Endpoint("POST", "/api/v1/tasks/{task}/steer", WRITE, "Task", lambda r, t: {"message": "x"}, ok=frozenset({409})),
    Endpoint("GET", "/api/v1/runs", READ, "Run"),
    Endpoint("GET", "/api/v1/runs/{run}", READ, "Run"),
    Endpoint("POST", "/api/v1/runs/{run}/cancel", WRITE, "Run"),
    Endpoint("POST", "/api/v1/runs/{run}/steer", WRITE, "Run", lambda r, t: {"message": "x"}, ok=frozenset({409})),
    Endpoint("GET", "/api/v1/runs/{run}/events", READ, "Run"),
    Endpoint("GET", "/api/v1/runs/{run}/events/stream", READ, "Run"),
    Endpoint("GET", "/api/v1/serviceaccounts", READ, "ServiceAccount"),
    Endpoint("POST", "/api/v1/serviceaccounts", WRITE, "ServiceAccount", lambda r, t: {"name": f"sa-{r}"}),
    Endpoint("POST", "/api/v1/serviceaccounts/ci/keys", WRITE, "ServiceAccount", lambda r, t: {}),
    Endpoint("DELETE", "/api/v1/serviceaccounts/ci/keys/ghost", WRITE, "ServiceAccount", ok=frozenset({404})),
    Endpoint("GET", "/api/v1/audit", READ, "Audit"),
    Endpoint("GET", "/api/v1/users", READ, "User", scoped=False),
    Endpoint("POST", "/api/v1/users", WRITE, "User", lambda r, t: {"name": f"u-{r}", "password": PASSWORD}, scoped=False),
    Endpoint("POST", "/api/v1/users/target/disable", WRITE, "User", scoped=False),
    Endpoint("POST", "/api/v1/users/target/enable", WRITE, "User", scoped=False),
]  # fmt: skip

# Not part of the matrix, with the reason.
OUTSIDE = {
    "/healthz": "public probe",
    "/readyz": "public probe",
    "/api/v1/whoami": "answers for the caller itself",
    "/api/v1/auth/login": "public: sign-in",
    "/api/v1/auth/refresh": "public: sign-in",
    "/api/v1/auth/logout": "public: sign-in",
}
RUNNER_PREFIX = "/api/v1/runner/"  # refused to every user role: tests/api/test_runner_api.py


def test_the_matrix_covers_every_route(plane: ControlPlane) -> None:
    routes = {
        (method.upper(), path)
        for path, operations in plane.app.openapi()["paths"].items()
        for method in operations
        if path not in OUTSIDE and not path.startswith(RUNNER_PREFIX)
    }
    covered = set()
    for endpoint in ENDPOINTS:
        template = endpoint.path
        for placeholder, name in (("keys/ghost", "keys/{key_id}"), ("{tenant}", "{name}"), ("{instance}", "{name}"),
                                  ("{task}", "{name}"), ("{pending}", "{name}"), ("{run}", "{run_id}"),
                                  ("/ci/", "/{name}/"), ("/ghost", "/{name}"), ("/members", "/{name}"),
                                  ("/s1", "/{name}"), ("/a1", "/{name}"), ("/web", "/{name}"),
                                  ("/target/", "/{name}/")):  # fmt: skip
            template = template.replace(placeholder, name)
        covered.add((endpoint.method, template))
    assert routes - covered == set(), "routes missing from the matrix"


async def _world(plane: ControlPlane) -> dict[str, dict[str, str]]:
    state = plane.app.state.api
    names: dict[str, dict[str, str]] = {}
    for t in TENANTS:
        for doc in (tenant(t), project("web", tenant=t), agent("a1", tenant=t, project="web"),
                    secret("s1", t, "web", k="value-123456")):  # fmt: skip
            from clawfleet.schemas.registry import MODELS_BY_KIND

            await state.resources.apply(SYSTEM, MODELS_BY_KIND[doc["kind"]].model_validate(doc))
        record = next(a for a in await state.agents.all_agents() if a.key.tenant == t)
        row = await state.instances.create(record, "local")
        await state.instances.transition(row, InstancePhase.STARTING)
        await state.dispatcher.protocol.register(row.id)
        submit = {
            "metadata": {"tenant": t, "project": "web"},
            "spec": {"agent": "a1", "prompt": "p"},
        }
        done, _ = await state.tasks.submit(SYSTEM, TaskIn.model_validate(submit))
        run = (await state.dispatcher.claims.claim(row.id, 1, 0))[0]["id"]
        await state.dispatcher.outcomes.complete(
            row.id, run, CompleteIn.model_validate({"status": "succeeded"})
        )
        pending, _ = await state.tasks.submit(SYSTEM, TaskIn.model_validate(submit))
        names[t] = {"tenant": t, "instance": row.name, "task": done.metadata.name,
                    "pending": pending.metadata.name, "run": run}  # fmt: skip
    return names


async def _tokens(
    plane: ControlPlane, api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> dict[str, str]:
    tokens = {"admin": plane.admin_token}
    for user in (*ROLES[1:], "target"):
        assert (
            await api.post("/api/v1/users", json={"name": user, "password": PASSWORD})
        ).status_code == 201
        if user in ("nobody", "target"):
            continue
        binding = {"kind": "RoleBinding", "metadata": {"name": f"as-{user}", "tenant": "acme"},
                   "spec": {"role": user, "subjects": [{"kind": "User", "name": user}]}}  # fmt: skip
        assert (await api.post("/api/v1/apply", json=binding)).status_code == 201
    await api.post("/api/v1/serviceaccounts", params={"tenant": "acme"}, json={"name": "ci"})
    await api.post("/api/v1/serviceaccounts", params={"tenant": "other"}, json={"name": "ci"})
    for user in ROLES[1:]:
        session = await anon.post(
            "/api/v1/auth/login", json={"username": user, "password": PASSWORD}
        )
        tokens[user] = session.json()["accessToken"]
    return tokens


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
async def test_role_endpoint_tenant_matrix(
    plane: ControlPlane, api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    world = await _world(plane)
    tokens = await _tokens(plane, api, anon)
    problems = []
    for endpoint, role, t in itertools.product(ENDPOINTS, ROLES, TENANTS):
        if not endpoint.scoped and t == "other":
            continue
        path = endpoint.path
        for key, value in world[t].items():
            path = path.replace("{" + key + "}", value)
        params = {"tenant": t, "project": "web"} if endpoint.scoped else {}
        if endpoint.kind in (
            "Tenant",
            "TenantLifecycle",
            "RoleBinding",
            "ServiceAccount",
            "Audit",
            "Project",
        ):
            params.pop("project", None)
        body = (
            endpoint.body(role, t) if endpoint.body else ({} if endpoint.method == "POST" else None)
        )
        response = await anon.request(
            endpoint.method, path, params=params, json=body,
            headers={"Authorization": f"Bearer {tokens[role]}"},
        )  # fmt: skip
        own = t == "acme" or role == "admin"
        if endpoint.kind == "Tenant" and not endpoint.scoped:
            expected = {200}  # everyone lists the tenants they may see
        elif role == "admin" or (own and may(role, endpoint.action, endpoint.kind)):
            expected = set(endpoint.ok) | ({200, 201} if endpoint.ok == {200, 201} else set())
        elif role == "nobody" or not own or endpoint.kind in ("User", "Cluster"):
            expected = {404}
        else:
            expected = {403}
        if response.status_code not in expected:
            problems.append(
                f"{role:12} {t:6} {endpoint.method:6} {endpoint.path}: "
                f"{response.status_code} (expected {sorted(expected)}) {response.text[:120]}"
            )
    assert not problems, "\n" + "\n".join(problems)
