"""A 500 is answered like every other response: with its request id, in the header and in the
body, and with the security headers, whether a handler or a middleware failed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from clawfleet.api.middleware import SECURITY_HEADERS
from clawfleet.server import ControlPlane


class Boom(RuntimeError):
    pass


async def _fail(*_args: Any, **_kwargs: Any) -> Any:
    raise Boom("a bug")


@pytest.fixture
async def client(plane: ControlPlane) -> AsyncIterator[httpx.AsyncClient]:
    """The real ASGI stack; an exception that escapes it would fail the test, not become a 500."""
    transport = httpx.ASGITransport(app=plane.app)
    headers = {"Authorization": f"Bearer {plane.admin_token}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://clawfleet.test", headers=headers
    ) as http:
        yield http


def _assert_internal(response: httpx.Response) -> None:
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    request_id = response.headers["x-request-id"]
    assert len(request_id) == 16
    for name, value in SECURITY_HEADERS:
        assert response.headers[name.decode()] == value.decode()
    body = response.json()
    assert body["code"] == "internal"
    assert body["requestId"] == request_id
    assert f"request id {request_id}" in body["detail"]
    assert "a bug" not in response.text  # the exception's text stays in the server log


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_failing_handler_answers_500_with_request_id_and_headers(
    plane: ControlPlane, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plane.app.state.api.tasks, "find", _fail)
    _assert_internal(await client.get("/api/v1/tasks"))


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_failing_middleware_answers_500_with_request_id_and_headers(
    plane: ControlPlane, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plane.app.state.api.sessions, "authenticate", _fail)
    _assert_internal(await client.get("/api/v1/whoami"))


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_the_server_logs_the_failure_under_the_request_id(
    plane: ControlPlane,
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(plane.app.state.api.tasks, "find", _fail)
    response = await client.get("/api/v1/tasks")
    failures = [r for r in caplog.records if r.exc_info and r.exc_info[0] is Boom]
    assert len(failures) == 1
    assert response.headers["x-request-id"] in failures[0].getMessage()
