"""Request bodies must be strict JSON: a repeated key, invalid UTF-8, NaN or a body nested past
what can be decoded is a 422 that names where, and changes nothing."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from tests.factories import agent

# Decoding does not depend on the database.
pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

JSON = {"content-type": "application/json"}


async def _post(api: httpx.AsyncClient, path: str, body: bytes) -> dict[str, Any]:
    response = await api.post(path, content=body, headers=JSON)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["code"] == "invalid"
    assert len(problem["errors"]) == 1
    return problem


async def test_a_repeated_key_is_refused_with_its_path(api: httpx.AsyncClient) -> None:
    body = b'{"kind": "Tenant", "metadata": {"name": "twice"}, "kind": "Project"}'
    problem = await _post(api, "/api/v1/apply", body)
    assert problem["errors"][0]["path"] == "kind"
    assert problem["errors"][0]["code"] == "duplicate-key"
    assert problem["detail"].startswith("kind: ")
    assert (await api.get("/api/v1/tenants/twice")).status_code == 404


async def test_a_repeated_key_with_the_same_value_is_refused_too(api: httpx.AsyncClient) -> None:
    body = b'{"kind": "Tenant", "kind": "Tenant", "metadata": {"name": "same"}}'
    assert (await _post(api, "/api/v1/apply", body))["errors"][0]["path"] == "kind"
    assert (await api.get("/api/v1/tenants/same")).status_code == 404


async def test_a_nested_repeated_key_is_named_by_its_full_path(api: httpx.AsyncClient) -> None:
    assert (await api.post("/api/v1/agents", json=agent("a"))).status_code == 201
    body = (
        b'{"spec": {"agent": "a", "prompt": "hi",'
        b' "data": {"files": [{"n": 1}, {"n": 2, "m": 0, "n": 3}]}}}'
    )
    problem = await _post(api, "/api/v1/tasks", body)
    assert problem["errors"][0] == {
        "path": "spec.data.files.1.n",
        "message": "this key appears twice in its object",
        "code": "duplicate-key",
    }
    assert (await api.get("/api/v1/tasks")).json()["items"] == []


async def test_invalid_utf8_is_refused_at_body(api: httpx.AsyncClient) -> None:
    problem = await _post(api, "/api/v1/apply", b'{"kind": "Tenant", "metadata": {"name": "\xff"}}')
    assert problem["errors"][0]["path"] == "body"
    assert problem["errors"][0]["code"] == "invalid-utf8"


async def test_a_body_nested_ten_thousand_deep_is_refused_at_body(api: httpx.AsyncClient) -> None:
    problem = await _post(api, "/api/v1/apply", b"[" * 10_000 + b"]" * 10_000)
    assert problem["errors"][0]["path"] == "body"
    assert problem["errors"][0]["code"] == "too-deep"


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
async def test_nan_and_infinity_are_not_json(api: httpx.AsyncClient, constant: str) -> None:
    body = f'{{"spec": {{"agent": "a", "prompt": "hi", "priority": {constant}}}}}'
    problem = await _post(api, "/api/v1/tasks", body.encode())
    assert problem["errors"][0]["path"] == "body"
    assert problem["errors"][0]["code"] == "invalid-json"
    assert constant.lstrip("-") in problem["errors"][0]["message"]


async def test_broken_json_is_refused_at_body_with_its_line(api: httpx.AsyncClient) -> None:
    problem = await _post(api, "/api/v1/apply", b'{"kind": "Tenant",\n "metadata": ')
    assert problem["errors"][0]["path"] == "body"
    assert problem["errors"][0]["code"] == "invalid-json"
    assert "line 2" in problem["errors"][0]["message"]


async def test_a_number_of_thousands_of_digits_is_refused(api: httpx.AsyncClient) -> None:
    body = b'{"spec": {"agent": "a", "prompt": "hi", "priority": ' + b"9" * 5000 + b"}}"
    problem = await _post(api, "/api/v1/tasks", body)
    assert problem["errors"][0]["path"] == "body"
    assert problem["errors"][0]["code"] == "invalid-json"


async def test_a_strict_body_still_decodes(api: httpx.AsyncClient) -> None:
    doc = {"kind": "Tenant", "metadata": {"name": "fine"}, "spec": {}}
    response = await api.post("/api/v1/apply", content=json.dumps(doc).encode(), headers=JSON)
    assert response.status_code == 201, response.text


async def test_every_route_that_takes_a_body_decodes_it_strictly(
    api: httpx.AsyncClient,
) -> None:
    spec = (await api.get("/api/v1/openapi.json")).json()
    taking = [
        (method, path)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if "requestBody" in operation
    ]
    assert len(taking) > 20
    for method, path in taking:
        url = re.sub(r"{[^}]+}", "x", path)
        response = await api.request(method, url, content=b'{"a": 1, "a": 2}', headers=JSON)
        assert response.status_code == 422, (method, path, response.text)
        assert response.json()["errors"][0]["code"] == "duplicate-key", (method, path)
