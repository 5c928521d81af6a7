"""GET /tasks/{name}/wait over HTTP: its parameters, its answer and its documented schema."""

from __future__ import annotations

import httpx
import pytest

from tests.factories import agent


@pytest.fixture
async def pending(api: httpx.AsyncClient) -> str:
    stopped = agent("a", state="Stopped")
    assert (await api.post("/api/v1/apply", json=stopped)).status_code == 201
    body = {"spec": {"agent": "a", "prompt": "hi"}}
    answer = await api.post("/api/v1/tasks", json=body)
    return str(answer.json()["metadata"]["name"])


async def test_the_answer_holds_the_task_and_the_reason(
    api: httpx.AsyncClient, pending: str
) -> None:
    answer = await api.get(f"/api/v1/tasks/{pending}/wait", params={"timeout": 0})
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"task", "waiting"}
    assert body["task"]["metadata"]["name"] == pending
    assert body["task"]["status"]["state"] == "pending"
    assert "agent 'a' has no ready instance" in body["waiting"]


@pytest.mark.parametrize(
    "params", [{"until": "claimed"}, {"timeout": 61}, {"timeout": -1}, {"timeout": "soon"}]
)
async def test_bad_parameters_are_a_422(
    api: httpx.AsyncClient, pending: str, params: dict[str, object]
) -> None:
    answer = await api.get(f"/api/v1/tasks/{pending}/wait", params=params)
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")


async def test_an_unknown_task_is_a_404(api: httpx.AsyncClient) -> None:
    answer = await api.get("/api/v1/tasks/nope/wait", params={"timeout": 0})
    assert answer.status_code == 404


async def test_the_response_is_documented(api: httpx.AsyncClient) -> None:
    spec = (await api.get("/api/v1/openapi.json")).json()
    ok = spec["paths"]["/api/v1/tasks/{name}/wait"]["get"]["responses"]["200"]
    assert ok["content"]["application/json"]["schema"]["$ref"].endswith("/TaskWaitOut")
    fields = spec["components"]["schemas"]["TaskWaitOut"]["properties"]
    assert set(fields) == {"task", "waiting"}
