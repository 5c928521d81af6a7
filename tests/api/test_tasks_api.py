"""Task names: unique per (tenant, project) like every name, as long as any name, on both
databases; a task's uid reaches it from any scope."""

from __future__ import annotations

import httpx

from tests.factories import agent, project, tenant

NAME_63 = "n" * 63


async def _world(api: httpx.AsyncClient) -> None:
    for doc in (tenant("acme"), tenant("beta"), project("web", "acme"), project("web", "beta"),
                agent("a", tenant="acme", project="web"),
                agent("a", tenant="beta", project="web")):  # fmt: skip
        response = await api.post("/api/v1/apply", json=doc)
        assert response.status_code in (200, 201), response.text


def _task(name: str, tenant_name: str) -> dict[str, object]:
    return {
        "kind": "Task",
        "metadata": {"name": name, "tenant": tenant_name, "project": "web"},
        "spec": {"agent": "a", "prompt": "hi"},
    }


async def test_a_task_name_is_unique_within_its_project_only(api: httpx.AsyncClient) -> None:
    await _world(api)
    first = await api.post("/api/v1/tasks", json=_task("shared", "acme"))
    assert first.status_code == 201, first.text
    # Another tenant may use the same name, and learns nothing about the first one.
    other = await api.post("/api/v1/tasks", json=_task("shared", "beta"))
    assert other.status_code == 201, other.text
    assert other.json()["metadata"]["uid"] != first.json()["metadata"]["uid"]
    again = await api.post("/api/v1/tasks", json=_task("shared", "acme"))
    assert again.status_code == 409
    assert again.json()["code"] == "already-exists"
    for tenant_name, uid in (("acme", first.json()["metadata"]["uid"]),
                             ("beta", other.json()["metadata"]["uid"])):  # fmt: skip
        got = await api.get(
            "/api/v1/tasks/shared", params={"tenant": tenant_name, "project": "web"}
        )
        assert got.status_code == 200
        assert got.json()["metadata"]["uid"] == uid
        # The uid finds the task from any scope.
        by_uid = await api.get(f"/api/v1/tasks/{uid}")
        assert by_uid.json()["metadata"]["tenant"] == tenant_name


async def test_a_task_name_of_63_characters_is_accepted(api: httpx.AsyncClient) -> None:
    """On PostgreSQL this was a 500 (the column was 32 characters)."""
    await _world(api)
    response = await api.post("/api/v1/tasks", json=_task(NAME_63, "acme"))
    assert response.status_code == 201, response.text
    got = await api.get(f"/api/v1/tasks/{NAME_63}", params={"tenant": "acme", "project": "web"})
    assert got.json()["metadata"]["name"] == NAME_63
    # what the task does not set is left out, as in the manifest it came from
    assert set(got.json()["spec"]) == {"agent", "prompt", "data", "priority", "retry"}
    too_long = await api.post("/api/v1/tasks", json=_task("n" * 64, "acme"))
    assert too_long.status_code == 422
    assert too_long.json()["errors"][0]["path"] == "metadata.name"


async def test_a_deleted_projects_tasks_do_not_reappear_in_a_new_one(
    api: httpx.AsyncClient,
) -> None:
    await _world(api)
    assert (await api.post("/api/v1/tasks", json=_task("old", "acme"))).status_code == 201
    scope = {"tenant": "acme", "project": "web"}
    assert (await api.delete("/api/v1/agents/a", params=scope)).status_code == 200
    assert (await api.delete("/api/v1/projects/web", params={"tenant": "acme"})).status_code == 200
    assert (await api.post("/api/v1/apply", json=project("web", "acme"))).status_code == 201
    assert (await api.get("/api/v1/tasks", params=scope)).json()["items"] == []
    assert (await api.get("/api/v1/runs", params=scope)).json()["items"] == []
    assert (await api.get("/api/v1/tasks/old", params=scope)).status_code == 404


async def test_deleting_an_agent_fails_the_tasks_only_it_could_take(
    api: httpx.AsyncClient,
) -> None:
    await _world(api)
    scope = {"tenant": "acme", "project": "web"}
    doc = agent("b", tenant="acme", project="web", labels={"team": "x"})
    assert (await api.post("/api/v1/apply", json=doc)).status_code == 201
    assert (await api.post("/api/v1/tasks", json=_task("only-a", "acme"))).status_code == 201
    either = {"kind": "Task", "metadata": {"name": "either", **scope},
              "spec": {"selector": "team=x", "prompt": "hi"}}  # fmt: skip
    assert (await api.post("/api/v1/tasks", json=either)).status_code == 201
    deleted = await api.delete("/api/v1/agents/a", params=scope)
    assert deleted.status_code == 200
    only_a = (await api.get("/api/v1/tasks/only-a", params=scope)).json()["status"]
    assert only_a["state"] == "failed"
    assert "agent 'a' in tenant 'acme', project 'web' was deleted" in only_a["error"]
    # A task another agent can still take keeps waiting for it.
    assert (await api.get("/api/v1/tasks/either", params=scope)).json()["status"]["state"] == (
        "pending"
    )


async def test_tasks_page_across_tenants_without_loss(api: httpx.AsyncClient) -> None:
    await _world(api)
    for name, tenant_name in (("one", "acme"), ("two", "beta"), ("three", "acme")):
        assert (await api.post("/api/v1/tasks", json=_task(name, tenant_name))).status_code == 201
    seen, params = [], {"allTenants": "true", "limit": "1"}
    while True:
        body = (await api.get("/api/v1/tasks", params=params)).json()
        seen += [item["metadata"]["name"] for item in body["items"]]
        if not body["metadata"]["continue"]:
            break
        params["continue"] = body["metadata"]["continue"]
    assert seen == ["one", "two", "three"]  # submission order, none lost or repeated
    bad = await api.get("/api/v1/tasks", params={"continue": "not-ours"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["path"] == "continue"
