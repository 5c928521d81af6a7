"""The resource API over HTTP (in-process ASGI), on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx

from tests.factories import agent, project, tenant

PROBLEM = "application/problem+json"


async def test_create_get_list_delete_agent(api: httpx.AsyncClient) -> None:
    created = await api.post("/api/v1/agents", json=agent("reviewer", replicas=2))
    assert created.status_code == 201, created.text
    body = created.json()
    meta = body["metadata"]
    assert meta["tenant"] == "default" and meta["project"] == "default"
    assert meta["generation"] == 1 and meta["resourceVersion"] == "1"
    assert meta["uid"] and meta["createdAt"].endswith("Z")
    assert body["spec"]["replicas"] == 2
    assert body["spec"]["state"] == "Running"  # defaulted

    got = await api.get("/api/v1/agents/reviewer")
    assert got.status_code == 200
    assert got.json() == body

    listed = (await api.get("/api/v1/agents")).json()
    assert listed["kind"] == "AgentList"
    assert [i["metadata"]["name"] for i in listed["items"]] == ["reviewer"]

    deleted = await api.delete("/api/v1/agents/reviewer")
    assert deleted.status_code == 200
    assert (await api.get("/api/v1/agents/reviewer")).status_code == 404


async def test_apply_twice_is_unchanged_and_bumps_nothing(api: httpx.AsyncClient) -> None:
    doc = agent("a1", labels={"team": "x"}, replicas=1)
    first = await api.post("/api/v1/apply", json=doc)
    assert first.status_code == 201 and first.json()["result"] == "created"
    second = await api.post("/api/v1/apply", json=doc)
    assert second.status_code == 200
    assert second.json()["result"] == "unchanged"
    assert second.json()["object"] == first.json()["object"]

    doc["spec"]["replicas"] = 3
    third = (await api.post("/api/v1/apply", json=doc)).json()
    assert third["result"] == "configured"
    assert third["object"]["metadata"]["generation"] == 2
    assert third["object"]["metadata"]["resourceVersion"] == "2"

    doc["metadata"]["labels"] = {"team": "y"}
    fourth = (await api.post("/api/v1/apply", json=doc)).json()
    assert fourth["result"] == "configured"
    assert fourth["object"]["metadata"]["generation"] == 2  # labels are not spec
    assert fourth["object"]["metadata"]["resourceVersion"] == "3"


async def test_stale_resource_version_is_409_and_changes_nothing(api: httpx.AsyncClient) -> None:
    created = (await api.post("/api/v1/agents", json=agent("a1"))).json()
    stale = created["metadata"]["resourceVersion"]
    update = agent("a1", replicas=2)
    update["metadata"]["resourceVersion"] = stale
    ok = await api.put("/api/v1/agents/a1", json=update)
    assert ok.status_code == 200 and ok.json()["metadata"]["resourceVersion"] == "2"

    update["spec"]["replicas"] = 5  # still carries the old version
    conflict = await api.put("/api/v1/agents/a1", json=update)
    assert conflict.status_code == 409
    assert conflict.headers["content-type"] == PROBLEM
    assert conflict.json()["code"] == "stale-resource-version"
    assert (await api.get("/api/v1/agents/a1")).json()["spec"]["replicas"] == 2

    applied = await api.post("/api/v1/apply", json=update)
    assert applied.status_code == 409
    gone = await api.delete("/api/v1/agents/a1", params={"resourceVersion": stale})
    assert gone.status_code == 409
    assert (await api.get("/api/v1/agents/a1")).status_code == 200


async def test_unknown_spec_field_is_422_naming_the_path(api: httpx.AsyncClient) -> None:
    doc = agent("a1")
    doc["spec"]["replicass"] = 3
    response = await api.post("/api/v1/agents", json=doc)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["code"] == "invalid"
    assert {
        "path": "spec.replicass",
        "message": "unknown field 'replicass'",
        "code": "unknown-field",
    } in problem["errors"]
    assert "spec.replicass" in problem["detail"]
    # the same through apply, where the body is a union over kinds
    applied = await api.post("/api/v1/apply", json=doc)
    assert applied.status_code == 422
    assert [e["path"] for e in applied.json()["errors"]] == ["spec.replicass"]
    assert (await api.get("/api/v1/agents/a1")).status_code == 404


async def test_wrong_types_and_bad_values_name_their_paths(api: httpx.AsyncClient) -> None:
    doc = agent("a1", replicas="many", state="Dancing")
    doc["spec"]["env"] = {"1BAD": "x"}
    doc["metadata"]["labels"] = {"bad key!": "v"}
    problem = (await api.post("/api/v1/agents", json=doc)).json()
    paths = {e["path"] for e in problem["errors"]}
    assert {"spec.replicas", "spec.state", "spec.env.1BAD.[key]", "metadata.labels"} <= paths


async def test_hostile_names_are_refused(api: httpx.AsyncClient) -> None:
    for name in ("../etc", "a/b", "UPPER", "x" * 64, "", "-lead", "a b", "naïve", "a\x00b"):
        doc = agent("ok")
        doc["metadata"]["name"] = name
        response = await api.post("/api/v1/agents", json=doc)
        assert response.status_code == 422, name
        assert response.json()["errors"][0]["path"] == "metadata.name"
    traversal = await api.get("/api/v1/agents/..%2F..%2Fetc")
    assert traversal.status_code == 404
    bad_scope = await api.get("/api/v1/agents", params={"tenant": "../x"})
    assert bad_scope.status_code == 422
    assert bad_scope.json()["errors"][0]["path"] == "tenant"
    assert (await api.get("/api/v1/agents")).json()["items"] == []


async def test_malformed_json_and_wrong_kind(api: httpx.AsyncClient) -> None:
    broken = await api.post(
        "/api/v1/agents", content=b'{"kind": "Agent",', headers={"content-type": "application/json"}
    )
    assert broken.status_code == 422
    assert broken.json()["errors"][0]["code"] == "invalid-json"
    wrong = await api.post("/api/v1/agents", json=tenant("t1"))
    assert wrong.status_code == 422
    assert wrong.json()["errors"][0]["path"] == "kind"
    unknown = await api.post("/api/v1/apply", json={"kind": "Gadget", "metadata": {"name": "x"}})
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["code"] == "unknown-kind"
    not_object = await api.post("/api/v1/apply", json=[1, 2])
    assert not_object.status_code == 422


async def test_body_over_limit_is_413(api: httpx.AsyncClient) -> None:
    doc = agent("big")
    doc["spec"]["instructions"] = "x" * (10 * 1024 * 1024)
    response = await api.post("/api/v1/agents", json=doc)
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == "payload-too-large"
    assert (await api.get("/api/v1/agents/big")).status_code == 404


async def test_chunked_body_over_limit_is_413(api: httpx.AsyncClient) -> None:
    async def chunks():  # no Content-Length: the limit must hold while streaming
        for _ in range(11):
            yield b"x" * (1024 * 1024)

    response = await api.post(
        "/api/v1/agents", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


async def test_requests_without_a_valid_token_are_401(anon: httpx.AsyncClient) -> None:
    for method, path in [
        ("GET", "/api/v1/agents"),
        ("POST", "/api/v1/apply"),
        ("GET", "/api/v1/openapi.json"),
        ("GET", "/api/v1/whoami"),
        ("DELETE", "/api/v1/tenants/default"),
    ]:
        response = await anon.request(method, path)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.headers["content-type"] == PROBLEM
    bad = await anon.get("/api/v1/agents", headers={"Authorization": "Bearer cf_nope"})
    assert bad.status_code == 401
    basic = await anon.get("/api/v1/agents", headers={"Authorization": "Basic YTpi"})
    assert basic.status_code == 401
    assert (await anon.get("/healthz")).status_code == 200
    assert (await anon.get("/readyz")).json() == {"status": "ready"}


async def test_parents_must_exist_and_children_block_delete(api: httpx.AsyncClient) -> None:
    orphan = await api.post("/api/v1/projects", json=project("web", tenant="acme"))
    assert orphan.status_code == 404
    assert "tenant 'acme' not found" in orphan.json()["detail"]
    assert (await api.post("/api/v1/tenants", json=tenant("acme"))).status_code == 201
    assert (
        await api.post("/api/v1/projects", json=project("web", tenant="acme"))
    ).status_code == 201
    nowhere = await api.post("/api/v1/agents", json=agent("a1", tenant="acme", project="nope"))
    assert nowhere.status_code == 404
    assert (
        await api.post("/api/v1/agents", json=agent("a1", tenant="acme", project="web"))
    ).status_code == 201

    blocked = await api.delete("/api/v1/tenants/acme")
    assert blocked.status_code == 409 and blocked.json()["code"] == "has-dependents"
    blocked = await api.delete("/api/v1/projects/web", params={"tenant": "acme"})
    assert blocked.status_code == 409
    assert (
        await api.delete("/api/v1/agents/a1", params={"tenant": "acme", "project": "web"})
    ).status_code == 200
    assert (await api.delete("/api/v1/projects/web", params={"tenant": "acme"})).status_code == 200
    assert (await api.delete("/api/v1/tenants/acme")).status_code == 200


async def test_scoping_by_tenant_and_project(api: httpx.AsyncClient) -> None:
    await api.post("/api/v1/tenants", json=tenant("acme"))
    await api.post("/api/v1/projects", json=project("web", tenant="acme"))
    await api.post("/api/v1/projects", json=project("ops", tenant="acme"))
    await api.post("/api/v1/agents", json=agent("a", tenant="acme", project="web"))
    await api.post("/api/v1/agents", json=agent("a", tenant="acme", project="ops"))
    await api.post("/api/v1/agents", json=agent("b"))

    def names(r: httpx.Response) -> list[str]:
        return [
            f"{i['metadata']['tenant']}/{i['metadata']['project']}/{i['metadata']['name']}"
            for i in r.json()["items"]
        ]

    assert names(await api.get("/api/v1/agents")) == ["default/default/b"]
    web = await api.get("/api/v1/agents", params={"tenant": "acme", "project": "web"})
    assert names(web) == ["acme/web/a"]
    every_project = await api.get(
        "/api/v1/agents", params={"tenant": "acme", "allProjects": "true"}
    )
    assert names(every_project) == ["acme/ops/a", "acme/web/a"]
    everything = await api.get("/api/v1/agents", params={"allTenants": "true"})
    assert names(everything) == ["acme/ops/a", "acme/web/a", "default/default/b"]
    # metadata and query must agree
    mismatch = await api.post(
        "/api/v1/agents",
        params={"tenant": "default"},
        json=agent("c", tenant="acme", project="web"),
    )
    assert mismatch.status_code == 422
    assert mismatch.json()["errors"][0]["path"] == "metadata.tenant"


async def test_label_selectors(api: httpx.AsyncClient) -> None:
    for name, labels in [("a", {"team": "x", "tier": "1"}), ("b", {"team": "y"}), ("c", {})]:
        assert (
            await api.post("/api/v1/agents", json=agent(name, labels=labels))
        ).status_code == 201

    async def select(selector: str) -> list[str]:
        r = await api.get("/api/v1/agents", params={"labelSelector": selector})
        assert r.status_code == 200, r.text
        return [i["metadata"]["name"] for i in r.json()["items"]]

    assert await select("team=x") == ["a"]
    assert await select("team!=x") == ["b", "c"]
    assert await select("team") == ["a", "b"]
    assert await select("!team") == ["c"]
    assert await select("team in (x,y)") == ["a", "b"]
    assert await select("team notin (x)") == ["b", "c"]
    assert await select("team=x,tier=1") == ["a"]
    assert await select("team=x,tier=2") == []
    bad = await api.get("/api/v1/agents", params={"labelSelector": "team=(x"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["path"] == "labelSelector"


async def test_cursor_pagination_walks_every_item_once(api: httpx.AsyncClient) -> None:
    names = [f"agent-{i:02d}" for i in range(23)]
    for name in reversed(names):
        await api.post("/api/v1/agents", json=agent(name))
    seen: list[str] = []
    params: dict[str, str | int] = {"limit": 5}
    pages = 0
    while True:
        body = (await api.get("/api/v1/agents", params=params)).json()
        seen += [i["metadata"]["name"] for i in body["items"]]
        pages += 1
        if not body["metadata"]["continue"]:
            break
        params["continue"] = body["metadata"]["continue"]
    assert seen == names and pages == 5
    bad = await api.get("/api/v1/agents", params={"continue": "garbage!!"})
    assert bad.status_code == 422


async def test_idempotency_key_replays_the_first_answer(api: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "create-a1-once"}
    first = await api.post("/api/v1/agents", json=agent("a1"), headers=headers)
    assert first.status_code == 201
    again = await api.post("/api/v1/agents", json=agent("a1"), headers=headers)
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers.get("idempotency-replayed") == "true"
    without_key = await api.post("/api/v1/agents", json=agent("a1"))
    assert without_key.status_code == 409 and without_key.json()["code"] == "already-exists"
    reused = await api.post("/api/v1/agents", json=agent("a2"), headers=headers)
    assert reused.status_code == 409 and reused.json()["code"] == "idempotency-key-reused"
    assert (await api.get("/api/v1/agents/a2")).status_code == 404


async def test_openapi_describes_every_kind(api: httpx.AsyncClient) -> None:
    spec = (await api.get("/api/v1/openapi.json")).json()
    for plural in ("tenants", "projects", "agents", "secrets"):
        assert f"/api/v1/{plural}" in spec["paths"]
        assert f"/api/v1/{plural}/{{name}}" in spec["paths"]
    assert "/api/v1/apply" in spec["paths"]
    assert "AgentSpec" in spec["components"]["schemas"]


async def test_unknown_route_and_method_are_problems(api: httpx.AsyncClient) -> None:
    missing = await api.get("/api/v1/gadgets")
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM
    wrong = await api.patch("/api/v1/agents")
    assert wrong.status_code == 405 and wrong.headers["content-type"] == PROBLEM


async def test_whoami_names_the_admin(api: httpx.AsyncClient) -> None:
    me = (await api.get("/api/v1/whoami")).json()
    assert me["name"] == "admin" and me["role"] == "admin"


async def test_security_headers_and_no_cors(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/agents", headers={"Origin": "https://evil.example"})
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert "access-control-allow-origin" not in response.headers
    preflight = await api.options("/api/v1/agents", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in preflight.headers
