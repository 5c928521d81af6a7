"""The runner's HTTP client for the runner protocol.

Transport failures and 5xx answers are retried with capped exponential backoff, because a runner
must outlive a control-plane restart: every call it makes is idempotent (events carry runner
sequence numbers, completion is recorded once). 401/403 mean the token was revoked or never
valid, and end the runner.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx

from clawfleet.core.errors import ClawfleetError, Unauthenticated

log = logging.getLogger(__name__)


class RunnerRefused(ClawfleetError):
    """The control plane refused a request for good (4xx other than auth)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status


class RunnerClient:
    def __init__(self, server: str, instance_id: str, token: str) -> None:
        self.instance_id = instance_id
        self._base = f"/api/v1/runner/instances/{instance_id}"
        self._http = httpx.AsyncClient(
            base_url=server.rstrip("/"),
            headers={"Authorization": f"Bearer {token}", "User-Agent": "clawfleet-runner"},
            timeout=httpx.Timeout(70.0, connect=5.0),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def call(self, path: str, body: dict[str, Any], *, retry: bool = True) -> Any:
        delay = 0.1
        while True:
            try:
                response = await self._http.post(self._base + path, json=body)
            except httpx.TransportError as exc:
                if not retry:
                    raise
                log.warning(
                    "control plane unreachable (%s); retrying in %.1fs", type(exc).__name__, delay
                )
            else:
                if response.status_code < 400:
                    return response.json()
                detail = _detail(response)
                if response.status_code in (401, 403):
                    raise Unauthenticated(f"the control plane refused this runner: {detail}")
                if response.status_code < 500 and response.status_code != 429:
                    raise RunnerRefused(response.status_code, detail)
                if not retry:
                    raise RunnerRefused(response.status_code, detail)
                log.warning(
                    "control plane answered %d; retrying in %.1fs", response.status_code, delay
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def register(self) -> dict[str, Any]:
        return dict(await self.call("/register", {}))

    async def heartbeat(self, liveness: str, active: list[str], acked: list[int]) -> dict[str, Any]:
        body = {"liveness": liveness, "activeRuns": active, "ackedCommands": acked}
        return dict(await self.call("/heartbeat", body))

    async def claim(self, max_runs: int, wait: float) -> list[dict[str, Any]]:
        answer = await self.call("/claim", {"max": max_runs, "wait": wait})
        return list(answer["runs"])

    async def commands(self, wait: float) -> list[dict[str, Any]]:
        answer = await self.call("/commands", {"wait": wait})
        return list(answer["commands"])

    async def ack(self, ids: list[int]) -> None:
        await self.call("/commands/ack", {"ids": ids})

    async def events(self, run_id: str, events: list[dict[str, Any]]) -> None:
        await self.call(f"/runs/{run_id}/events", {"events": events})

    async def complete(self, run_id: str, result: dict[str, Any]) -> dict[str, Any]:
        return dict(await self.call(f"/runs/{run_id}/complete", result))


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    return str(body.get("detail") if isinstance(body, dict) else body)[:300]
