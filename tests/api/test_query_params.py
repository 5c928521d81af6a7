"""Integers in query parameters, headers and listing cursors are bounded to what the databases
store: anything else is a 422 naming the parameter, never a 500 (SQLite and asyncpg both refuse
an integer past 64 bits, and PostgreSQL a cursor value of the wrong type)."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import httpx
import pytest

from clawfleet.domain.lifecycle import InstancePhase
from clawfleet.domain.resources import ResourceKey
from clawfleet.server import ControlPlane
from tests.factories import agent

HUGE = 10**30
INT64_MAX = 2**63 - 1


def cursor(*values: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(values)).encode()).decode().rstrip("=")


def _assert_refused(response: httpx.Response, path: str, code: str | None = None) -> None:
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "invalid"
    assert [e["path"] for e in problem["errors"]] == [path]
    if code is not None:
        assert problem["errors"][0]["code"] == code


async def _run(plane: ControlPlane, api: httpx.AsyncClient) -> str:
    """A running run of agent 'a' (acting as the controller and a runner would)."""
    assert (await api.post("/api/v1/agents", json=agent("a"))).status_code == 201
    task = await api.post("/api/v1/tasks", json={"spec": {"agent": "a", "prompt": "hi"}})
    assert task.status_code == 201, task.text
    state = plane.app.state.api
    key = ResourceKey("Agent", "default", "default", "a")
    record = next(a for a in await state.agents.all_agents() if a.key == key)
    row = await state.instances.create(record, "local")
    await state.instances.transition(row, InstancePhase.STARTING)
    await state.dispatcher.protocol.register(row.id)
    run_id: str = (await state.dispatcher.claims.claim(row.id, 1, 0))[0]["id"]
    return run_id


@pytest.mark.parametrize("value", [HUGE, INT64_MAX + 1, "9" * 5000])
async def test_audit_before_past_64_bits_is_refused(api: httpx.AsyncClient, value: Any) -> None:
    _assert_refused(await api.get("/api/v1/audit", params={"before": value}), "before")


async def test_audit_before_at_the_bound_is_an_empty_page(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/audit", params={"before": INT64_MAX})
    assert response.status_code == 200, response.text


async def test_run_events_after_past_64_bits_is_refused(
    plane: ControlPlane, api: httpx.AsyncClient
) -> None:
    run_id = await _run(plane, api)
    base = f"/api/v1/runs/{run_id}/events"
    _assert_refused(await api.get(base, params={"after": HUGE}), "after")
    _assert_refused(await api.get(f"{base}/stream", params={"after": HUGE}), "after")
    assert (await api.get(base, params={"after": INT64_MAX})).json()["events"] == []


@pytest.mark.parametrize("value", ["9" * 30, "²", "-1", "x"])
async def test_a_last_event_id_that_is_no_event_id_is_refused(
    plane: ControlPlane, api: httpx.AsyncClient, value: str
) -> None:
    run_id = await _run(plane, api)
    response = await api.get(
        f"/api/v1/runs/{run_id}/events/stream", headers={"Last-Event-ID": value.encode()}
    )
    _assert_refused(response, "Last-Event-ID")


@pytest.mark.parametrize(
    "token",
    [
        cursor(HUGE),
        cursor(-HUGE),
        cursor(INT64_MAX + 1),
        cursor("7"),
        cursor(True),
        cursor(1.5),
        cursor(None),
        cursor([1]),
        cursor({"at": "2026-01-01T00:00:00"}),
        base64.urlsafe_b64encode(b"[" * 20 + b"]" * 20).decode(),
    ],
)
async def test_a_task_cursor_that_is_no_task_key_is_refused(
    api: httpx.AsyncClient, token: str
) -> None:
    response = await api.get("/api/v1/tasks", params={"continue": token})
    _assert_refused(response, "continue", "invalid-cursor")


@pytest.mark.parametrize("token", [cursor(7), cursor("r\u0000"), cursor("\ud800"), cursor(None)])
async def test_a_run_cursor_that_is_no_run_key_is_refused(
    api: httpx.AsyncClient, token: str
) -> None:
    _assert_refused(await api.get("/api/v1/runs", params={"continue": token}), "continue")


@pytest.mark.parametrize(
    ("path", "token"),
    [
        ("/api/v1/instances", cursor("t", "p", HUGE)),
        ("/api/v1/instances", cursor("t", "\u0000", "n")),
        ("/api/v1/agents", cursor("t", "p", "\u0000")),
        ("/api/v1/agents", cursor("t", {"at": "x"}, "n")),
        ("/api/v1/agents", base64.urlsafe_b64encode(b"[" * 1500).decode()),
    ],
)
async def test_a_listing_cursor_of_the_wrong_shape_is_refused(
    api: httpx.AsyncClient, path: str, token: str
) -> None:
    _assert_refused(await api.get(path, params={"continue": token}), "continue")


async def test_a_cursor_this_server_issued_still_pages(api: httpx.AsyncClient) -> None:
    for name in ("a1", "a2", "a3"):
        assert (await api.post("/api/v1/agents", json=agent(name))).status_code == 201
    first = (await api.get("/api/v1/agents", params={"limit": 2})).json()
    token = first["metadata"]["continue"]
    second = (await api.get("/api/v1/agents", params={"limit": 2, "continue": token})).json()
    assert [i["metadata"]["name"] for i in first["items"] + second["items"]] == ["a1", "a2", "a3"]


@pytest.mark.parametrize("value", ["²", "9" * 19, "-1"])
async def test_a_resource_version_that_is_no_version_is_refused(
    api: httpx.AsyncClient, value: str
) -> None:
    assert (await api.post("/api/v1/agents", json=agent("a"))).status_code == 201
    response = await api.delete("/api/v1/agents/a", params={"resourceVersion": value})
    _assert_refused(response, "resourceVersion")
    assert (await api.get("/api/v1/agents/a")).status_code == 200


async def test_no_integer_parameter_of_the_api_takes_a_value_past_64_bits(
    api: httpx.AsyncClient,
) -> None:
    spec = (await api.get("/api/v1/openapi.json")).json()
    checked = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            for param in operation.get("parameters", []):
                kinds = [param["schema"].get("type")] + [
                    s.get("type") for s in param["schema"].get("anyOf", [])
                ]
                if "integer" not in kinds:
                    continue
                url = re.sub(r"{[^}]+}", "x", path)
                where = param["in"]
                response = await api.request(
                    method,
                    url,
                    params={param["name"]: str(HUGE)} if where == "query" else None,
                    headers={param["name"]: str(HUGE)} if where == "header" else None,
                )
                _assert_refused(response, param["name"])
                checked.append((method, path, param["name"]))
    assert len(checked) >= 10


async def test_audit_since_without_a_zone_is_utc(api: httpx.AsyncClient) -> None:
    assert (await api.post("/api/v1/agents", json=agent("a"))).status_code == 201
    everything = await api.get("/api/v1/audit", params={"since": "2000-01-01"})
    assert everything.status_code == 200, everything.text
    assert [e["name"] for e in everything.json()["items"]][:1] == ["a"]
    nothing = await api.get("/api/v1/audit", params={"since": "9999-01-01T00:00:00"})
    assert nothing.json()["items"] == []


@pytest.mark.parametrize("value", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"])
async def test_audit_since_past_the_calendar_in_utc_is_refused(
    api: httpx.AsyncClient, value: str
) -> None:
    _assert_refused(await api.get("/api/v1/audit", params={"since": value}), "since")


async def test_no_path_or_query_parameter_takes_a_nul_byte(api: httpx.AsyncClient) -> None:
    spec = (await api.get("/api/v1/openapi.json")).json()
    checked = 0
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            body = {} if "requestBody" in operation else None
            for param in operation.get("parameters", []):
                if param["in"] not in ("path", "query"):
                    continue
                name = param["name"]
                url = re.sub(r"{[^}]+}", "x", path)
                if param["in"] == "path":
                    url = path.replace(f"{{{name}}}", "a%00b")
                    url = re.sub(r"{[^}]+}", "x", url)
                else:
                    url = f"{url}?{name}=a%00b"
                response = await api.request(method, url, json=body)
                _assert_refused(response, name, "nul-byte")
                checked += 1
    assert checked > 50
