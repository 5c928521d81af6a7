"""Another tenant's tasks and runs are answered exactly as tasks and runs that exist nowhere.

The RBAC matrix checks status codes; this suite checks everything else a prober sees. Each role
of tenant acme asks every task and run endpoint about tenant other's tasks (by name in other's
scope, by uid from its own scope and from other's) and runs, and about a name or id of the same
length that exists nowhere. The two answers must have the same status, the same body once the
name asked for is blanked out (and the request id dropped) and the same headers apart from
X-Request-Id. Afterwards other's work is as it was. Both databases, as every API test.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from clawfleet.domain.ids import new_run_id, new_task_id
from clawfleet.domain.lifecycle import InstancePhase
from clawfleet.schemas.registry import MODELS_BY_KIND
from clawfleet.schemas.runner import CompleteIn
from clawfleet.schemas.tasks import TaskIn
from clawfleet.server import SYSTEM, ControlPlane
from clawfleet.store.repositories.runs import RunRepository
from tests.factories import agent, project, tenant

PASSWORD = "isolation password 1234"
ROLES = ("tenant-admin", "operator", "developer", "viewer", "nobody")
HERE, THERE = {"tenant": "acme", "project": "web"}, {"tenant": "other", "project": "web"}

# (method, path, body): every task and run endpoint that names one task or run.
TASK_ENDPOINTS = [
    ("GET", "/api/v1/tasks/{}", None),
    ("GET", "/api/v1/tasks/{}/runs", None),
    ("GET", "/api/v1/tasks/{}/wait?timeout=0", None),
    ("POST", "/api/v1/tasks/{}/cancel", {}),
    ("POST", "/api/v1/tasks/{}/steer", {"message": "hello"}),
]
RUN_ENDPOINTS = [
    ("GET", "/api/v1/runs/{}", None),
    ("GET", "/api/v1/runs/{}/events", None),
    ("GET", "/api/v1/runs/{}/events/stream", None),
    ("POST", "/api/v1/runs/{}/cancel", {}),
    ("POST", "/api/v1/runs/{}/steer", {"message": "hello"}),
    ("POST", "/api/v1/tasks/{}/steer", {"message": "hello"}),  # steer takes a run id too
]

# Covered by the tests of listings, names and idempotency keys below.
COLLECTIONS = {("GET", "/api/v1/tasks"), ("POST", "/api/v1/tasks"), ("GET", "/api/v1/runs")}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_every_task_and_run_endpoint_is_probed(plane: ControlPlane) -> None:
    routes = {
        (method.upper(), path)
        for path, operations in plane.app.openapi()["paths"].items()
        for method in operations
        if path.startswith(("/api/v1/tasks", "/api/v1/runs"))
    }
    probed = {(m, p.format("{name}").split("?")[0]) for m, p, _ in TASK_ENDPOINTS} | {
        (m, p.format("{run_id}" if p.startswith("/api/v1/runs") else "{name}"))
        for m, p, _ in RUN_ENDPOINTS
    }
    assert routes - probed - COLLECTIONS == set(), "task or run endpoints nobody probes"


async def _apply(plane: ControlPlane, doc: dict[str, Any]) -> None:
    await plane.app.state.api.resources.apply(
        SYSTEM, MODELS_BY_KIND[doc["kind"]].model_validate(doc)
    )


async def _submit(plane: ControlPlane, t: str, name: str) -> str:
    body = {"metadata": {"name": name, "tenant": t, "project": "web"},
            "spec": {"agent": "a1", "prompt": "p"}}  # fmt: skip
    view, _ = await plane.app.state.api.tasks.submit(SYSTEM, TaskIn.model_validate(body))
    return view.metadata.uid


async def _world(plane: ControlPlane) -> dict[str, str]:
    """Tenants acme and other; in other a done, a running and a pending task (and the runs)."""
    state = plane.app.state.api
    for t in ("acme", "other"):
        for doc in (tenant(t), project("web", tenant=t), agent("a1", tenant=t, project="web")):
            await _apply(plane, doc)
    record = next(a for a in await state.agents.all_agents() if a.key.tenant == "other")
    row = await state.instances.create(record, "local")
    await state.instances.transition(row, InstancePhase.STARTING)
    await state.dispatcher.protocol.register(row.id)
    world = {"done": await _submit(plane, "other", "plan-done")}
    world["done-run"] = (await state.dispatcher.claims.claim(row.id, 1, 0))[0]["id"]
    await state.dispatcher.outcomes.complete(
        row.id, world["done-run"], CompleteIn.model_validate({"status": "succeeded"})
    )
    world["running"] = await _submit(plane, "other", "plan-busy")
    world["running-run"] = (await state.dispatcher.claims.claim(row.id, 1, 0))[0]["id"]
    world["pending"] = await _submit(plane, "other", "plan-wait")
    return world


async def _sign_in(api: httpx.AsyncClient, anon: httpx.AsyncClient, user: str, t: str) -> str:
    created = await api.post("/api/v1/users", json={"name": user, "password": PASSWORD})
    assert created.status_code == 201, created.text
    if not user.startswith("nobody"):
        role = user.removesuffix(f"-{t}")
        subject = {"kind": "User", "name": user}
        binding = {"kind": "RoleBinding", "metadata": {"name": f"as-{user}", "tenant": t},
                   "spec": {"role": role, "subjects": [subject]}}  # fmt: skip
        assert (await api.post("/api/v1/apply", json=binding)).status_code == 201
    session = await anon.post("/api/v1/auth/login", json={"username": user, "password": PASSWORD})
    return str(session.json()["accessToken"])


def _seen(response: httpx.Response, asked: str) -> tuple[int, Any, dict[str, str]]:
    """What a prober learns from an answer, with the name it asked for blanked out."""
    body = json.loads(response.text.replace(asked, "<asked>"))
    if isinstance(body, dict):
        body.pop("requestId", None)
    headers = {k: v for k, v in response.headers.items() if k != "x-request-id"}
    return response.status_code, body, headers


async def _probe(
    client: httpx.AsyncClient, token: str, method: str, path: str, body: Any, ref: str,
    params: dict[str, str],
) -> httpx.Response:  # fmt: skip
    return await client.request(
        method, path.format(ref), params=params, json=body,
        headers={"Authorization": f"Bearer {token}"},
    )  # fmt: skip


def _probes(world: dict[str, str]) -> list[tuple[str, str, Any, str, str, dict[str, str]]]:
    """(method, path, body, other's ref, a ref that exists nowhere, query) of every probe."""
    probes = []
    for method, path, body in TASK_ENDPOINTS:
        for name in ("plan-done", "plan-busy", "plan-wait"):
            probes.append((method, path, body, name, "plan-gone", THERE))
        for which in ("done", "running", "pending"):
            for params in (HERE, THERE, {}):
                probes.append((method, path, body, world[which], new_task_id(), params))
    for method, path, body in RUN_ENDPOINTS:
        for which in ("done-run", "running-run"):
            for params in (HERE, THERE):
                probes.append((method, path, body, world[which], new_run_id(), params))
    return probes


async def test_other_tenants_tasks_and_runs_look_like_nothing_at_all(
    plane: ControlPlane, api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    world = await _world(plane)
    before = {
        which: (await api.get(f"/api/v1/tasks/{world[which]}")).json()
        for which in ("done", "running", "pending")
    }
    tokens = {role: await _sign_in(api, anon, f"{role}-acme", "acme") for role in ROLES}
    problems = []
    for role, token in tokens.items():
        for method, path, body, theirs, nowhere, params in _probes(world):
            assert len(theirs) == len(nowhere)
            hidden = await _probe(anon, token, method, path, body, theirs, params)
            missing = await _probe(anon, token, method, path, body, nowhere, params)
            if hidden.status_code != 404 or _seen(hidden, theirs) != _seen(missing, nowhere):
                problems.append(
                    f"{role:12} {method:4} {path.format(theirs)} {params}:\n"
                    f"    theirs:  {hidden.status_code} {hidden.text[:200]}\n"
                    f"    nowhere: {missing.status_code} {missing.text[:200]}"
                )
    assert not problems, "\n" + "\n".join(problems)
    for which, view in before.items():  # no cancel or steer reached them
        after = (await api.get(f"/api/v1/tasks/{world[which]}")).json()
        assert after == view
    async with plane.db.read() as conn:
        run = await RunRepository(conn).get(world["running-run"])
        assert run is not None
        assert await RunRepository(conn).pending_commands(run.instance_id) == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_run_listing_filtered_by_another_tenants_task_is_empty(
    plane: ControlPlane, api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    world = await _world(plane)
    token = await _sign_in(api, anon, "developer-acme", "acme")
    auth = {"Authorization": f"Bearer {token}"}
    for params in ({**HERE}, {**HERE, "allProjects": "true"}, {"allTenants": "true"}):
        for theirs, nowhere in ((world["done"], new_task_id()), (world["pending"], "plan-gone")):
            hidden = await anon.get("/api/v1/runs", params={**params, "task": theirs}, headers=auth)
            missing = await anon.get(
                "/api/v1/runs", params={**params, "task": nowhere}, headers=auth
            )
            assert hidden.status_code == 200
            assert hidden.json()["items"] == []
            assert _seen(hidden, theirs) == _seen(missing, nowhere)
    listed = await anon.get("/api/v1/tasks", params={"allTenants": "true"}, headers=auth)
    assert listed.json()["items"] == []


async def _submit_as(
    anon: httpx.AsyncClient, token: str, t: str, name: str, key: str | None = None
) -> httpx.Response:
    body = {"kind": "Task", "metadata": {"name": name, "tenant": t, "project": "web"},
            "spec": {"agent": "a1", "prompt": f"{t}'s own prompt"}}  # fmt: skip
    headers = {"Authorization": f"Bearer {token}", **({"Idempotency-Key": key} if key else {})}
    return await anon.post("/api/v1/tasks", json=body, headers=headers)


async def test_a_name_or_idempotency_key_another_tenant_used_is_free_and_tells_nothing(
    plane: ControlPlane, api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    await _world(plane)
    theirs = await _sign_in(api, anon, "developer-other", "other")
    ours = await _sign_in(api, anon, "developer-acme", "acme")
    first = await _submit_as(anon, theirs, "other", "shared", key="the-key")
    assert first.status_code == 201, first.text
    # The same name and the same key in acme make a new task of acme's, with no trace of other's.
    mine = await _submit_as(anon, ours, "acme", "shared", key="the-key")
    assert mine.status_code == 201, mine.text
    assert mine.json()["metadata"]["uid"] != first.json()["metadata"]["uid"]
    assert mine.json()["metadata"]["tenant"] == "acme"
    assert "other" not in mine.text
    # Its key again answers with acme's task, not other's.
    again = await _submit_as(anon, ours, "acme", "shared", key="the-key")
    assert again.status_code == 200
    assert again.json()["metadata"]["uid"] == mine.json()["metadata"]["uid"]
    # Submitting into other with its name and key is refused exactly like a fresh name and key.
    hidden = await _submit_as(anon, ours, "other", "shared", key="the-key")
    fresh = await _submit_as(anon, ours, "other", "unused", key="new-key")
    assert hidden.status_code == 404
    assert _seen(hidden, "shared") == _seen(fresh, "unused")
    # other still sees only its own task under the name.
    got = await anon.get(
        "/api/v1/tasks/shared", params=THERE, headers={"Authorization": f"Bearer {theirs}"}
    )
    assert got.json()["metadata"]["uid"] == first.json()["metadata"]["uid"]
    assert got.json()["spec"]["prompt"] == "other's own prompt"


async def test_a_project_binding_sees_no_task_of_the_tenants_other_projects(
    plane: ControlPlane, api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    for doc in (tenant("acme"), project("web", tenant="acme"), project("ops", tenant="acme"),
                agent("a1", tenant="acme", project="ops")):  # fmt: skip
        await _apply(plane, doc)
    body = {"metadata": {"name": "plan-ops", "tenant": "acme", "project": "ops"},
            "spec": {"agent": "a1", "prompt": "p"}}  # fmt: skip
    view, _ = await plane.app.state.api.tasks.submit(SYSTEM, TaskIn.model_validate(body))
    user = {"name": "webdev", "password": PASSWORD}
    assert (await api.post("/api/v1/users", json=user)).status_code == 201
    binding = {"kind": "RoleBinding", "metadata": {"name": "webdev", "tenant": "acme"},
               "spec": {"role": "developer", "project": "web",
                        "subjects": [{"kind": "User", "name": "webdev"}]}}  # fmt: skip
    assert (await api.post("/api/v1/apply", json=binding)).status_code == 201
    session = await anon.post(
        "/api/v1/auth/login", json={"username": "webdev", "password": PASSWORD}
    )
    token = session.json()["accessToken"]
    ops = {"tenant": "acme", "project": "ops"}
    for method, path, payload in TASK_ENDPOINTS:
        for theirs, nowhere, params in (("plan-ops", "plan-gon", ops),
                                        (view.metadata.uid, new_task_id(), HERE)):  # fmt: skip
            hidden = await _probe(anon, token, method, path, payload, theirs, params)
            missing = await _probe(anon, token, method, path, payload, nowhere, params)
            assert hidden.status_code == 404, (path, hidden.text)
            assert _seen(hidden, theirs) == _seen(missing, nowhere), (path, hidden.text)
    state = (await api.get(f"/api/v1/tasks/{view.metadata.uid}")).json()["status"]["state"]
    assert state == "pending"
