"""Hostile values, field family by field family, through the real API: each is refused with a
422 that names its field, and nothing is stored. Every value here was accepted once, and then
broke something later (a claim, a quota check, a read, a controller pass)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from clawfleet.domain.lifecycle import InstancePhase
from clawfleet.schemas.agents import AgentIn
from clawfleet.server import SYSTEM, ControlPlane
from tests.factories import agent, tenant

HUGE = 10**400


def deep(levels: int) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for _ in range(levels):
        document = {"x": document}
    return document


DEEP_600 = deep(600)


def put(document: dict[str, Any], path: str, value: object) -> dict[str, Any]:
    """``document`` with ``value`` at the dotted ``path`` (copied along the path only)."""
    head, _, rest = path.partition(".")
    doc = dict(document)
    doc[head] = put(doc.get(head) or {}, rest, value) if rest else value
    return doc


TASK = {"kind": "Task", "metadata": {"name": "hostile"}, "spec": {"agent": "a", "prompt": "hi"}}

TASK_CASES: list[tuple[str, object]] = [
    ("spec.timeout", "999999999999999s"),
    ("spec.timeout", "9" * 25 + "s"),
    ("spec.timeout", "720h1s"),  # a second past the maximum of 30 days
    ("spec.timeout", "-1s"),
    ("spec.timeout", "45s\n"),
    ("spec.timeout", "NaN"),
    ("spec.timeout", 45),
    ("spec.retry.backoff", "9" * 20 + "s"),
    ("spec.retry.backoff", "3601s"),
    ("spec.retry.maxAttempts", HUGE),
    ("spec.priority", HUGE),
    ("spec.prompt", "hi\x00there"),
    ("spec.prompt", "x" * (1024 * 1024 + 1)),
    ("spec.selector", "team=x\x00"),
    ("spec.idempotencyKey", "key\nwith-a-newline"),
    ("spec.data", DEEP_600),
    ("spec.data", deep(33)),
    ("spec.data", {"text": "a\x00b"}),
    ("spec.data", {"key\x00": 1}),
    ("spec.data", {"blob": "x" * (1024 * 1024)}),
    ("spec.data", "not an object"),
    ("metadata.name", "hostile\n"),
    ("metadata.labels", {f"k{i}": "v" for i in range(65)}),
    ("metadata.annotations", {"note": "a\x00b"}),
]

AGENT_CASES: list[tuple[str, object]] = [
    ("spec.idleTimeout", "9" * 400 + "s"),
    ("spec.idleTimeout", "721h"),
    ("spec.env.GREETING", "hello\x00world"),
    ("spec.env", {f"V{i}": "x" for i in range(1025)}),
    ("spec.config", DEEP_600),
    ("spec.config", {"protocol": "jsonl", "n": deep(40)}),
    ("spec.template", {"name": "t", "variables": DEEP_600}),
    ("spec.resources", {"cpu": "9" * 400}),
    ("spec.resources", {"memory": "1e3"}),
    ("spec.resources", {"memory": "Infinity"}),
    ("spec.resources", {"cpu": "-1"}),
    ("spec.resources", {"cpu": "2\n"}),
    ("spec.resources", {"memory": "1000000000000000000Ki"}),  # past the maximum of 10^18
    ("spec.replicas", HUGE),
    ("spec.concurrency", -1),
    ("spec.command", ["sh", "-c", "cat\x00"]),
    ("spec.model", {"provider": "p", "name": "gpt\nx"}),
    ("spec.instructions", "be kind\x00"),
    ("metadata.name", "abc\n"),
    ("metadata.generation", HUGE),
]

TENANT_CASES: list[tuple[str, object]] = [
    ("spec.quota.agents", HUGE),
    ("spec.quota.instances", 10**20),
    ("spec.quota.concurrentRuns", -1),
    ("spec.quota.cpu", "9" * 400),
    ("spec.quota.memory", "Infinity"),
    ("spec.quota.storedBytes", "1e400"),
    ("spec.displayName", "Acme\x00"),
    ("spec.displayName", "Acme\r\nInjected: yes"),
    ("spec.description", "x" * 5000),
]


def _error_paths(response: httpx.Response) -> list[str]:
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "invalid"
    return [error["path"] for error in problem["errors"]]


def _named(paths: list[str], field: str) -> bool:
    return any(path == field or path.startswith(field + ".") for path in paths)


@pytest.mark.parametrize(("field", "value"), TASK_CASES, ids=[c[0] for c in TASK_CASES])
async def test_a_hostile_task_is_refused_with_its_field(
    api: httpx.AsyncClient, field: str, value: object
) -> None:
    assert (await api.post("/api/v1/apply", json=agent("a"))).status_code == 201
    response = await api.post("/api/v1/tasks", json=put(TASK, field, value))
    assert _named(_error_paths(response), field), response.text
    assert (await api.get("/api/v1/tasks")).json()["items"] == []


@pytest.mark.parametrize(("field", "value"), AGENT_CASES, ids=[c[0] for c in AGENT_CASES])
async def test_a_hostile_agent_is_refused_with_its_field(
    api: httpx.AsyncClient, field: str, value: object
) -> None:
    response = await api.post("/api/v1/apply", json=put(agent("b"), field, value))
    assert _named(_error_paths(response), field), response.text
    assert (await api.get("/api/v1/agents")).json()["items"] == []


@pytest.mark.parametrize(("field", "value"), TENANT_CASES, ids=[c[0] for c in TENANT_CASES])
async def test_a_hostile_tenant_is_refused_with_its_field(
    api: httpx.AsyncClient, field: str, value: object
) -> None:
    response = await api.post("/api/v1/apply", json=put(tenant("acme"), field, value))
    assert _named(_error_paths(response), field), response.text
    assert (await api.get("/api/v1/tenants/acme")).status_code == 404


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
async def test_a_non_finite_number_in_task_data_is_refused(
    api: httpx.AsyncClient, literal: str
) -> None:
    """Python's JSON parser reads these literals; PostgreSQL and every JSON reader refuse them,
    and so does the API's body decoder: they are not JSON."""
    assert (await api.post("/api/v1/apply", json=agent("a"))).status_code == 201
    body = json.dumps(TASK).replace('"prompt": "hi"', f'"prompt": "hi", "data": {{"n": {literal}}}')
    response = await api.post(
        "/api/v1/tasks", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"] == [
        {"path": "body", "code": "invalid-json",
         "message": f"{literal} is not a JSON value; send a number or a string"}
    ]  # fmt: skip
    assert (await api.get("/api/v1/tasks")).json()["items"] == []


RUNNER_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("commands/ack", {"ids": [10**20]}, "ids.0"),
    ("commands/ack", {"ids": [HUGE]}, "ids.0"),
    ("commands/ack", {"ids": list(range(1, 1100))}, "ids"),
    ("heartbeat", {"ackedCommands": [10**20]}, "ackedCommands.0"),
    ("heartbeat", {"activeRuns": ["r\x00"]}, "activeRuns.0"),
    ("runs/r-x/events", {"events": [{"seq": 10**20, "type": "log"}]}, "events.0.seq"),
    ("runs/r-x/events", {"events": [{"seq": 1, "type": "log", "data": DEEP_600}]}, "events.0.data"),
    ("runs/r-x/complete", {"status": "succeeded", "output": DEEP_600}, "output"),
    ("runs/r-x/complete", {"status": "failed", "error": "bad\x00"}, "error"),
    ("failed", {"error": "no\x00such program"}, "error"),
]


@pytest.mark.parametrize(
    ("path", "body", "field"), RUNNER_CASES, ids=[f"{c[0]}-{c[2]}" for c in RUNNER_CASES]
)
async def test_a_hostile_runner_body_is_refused_with_its_field(
    plane: ControlPlane, anon: httpx.AsyncClient, path: str, body: dict[str, Any], field: str
) -> None:
    state = plane.app.state.api
    await state.resources.apply(SYSTEM, AgentIn.model_validate(agent("a")))
    record = (await state.agents.all_agents())[0]
    row = await state.instances.create(record, "local")
    await state.instances.transition(row, InstancePhase.STARTING)
    _, token = await state.tokens.mint_runner(row.id, "default")
    response = await anon.post(
        f"/api/v1/runner/instances/{row.id}/{path}",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert field in _error_paths(response), response.text
    instance = next(i for i in await state.instances.all() if i.id == row.id)
    assert instance.last_error is None  # a refused start-failure report recorded nothing
