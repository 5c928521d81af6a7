"""The runner's HTTP client for the runner protocol.

Transport failures, 5xx and 429 answers are retried with capped exponential backoff, because a
runner must outlive a control-plane restart: every call it makes is idempotent (events carry
runner sequence numbers, completion is recorded once). 401/403 mean the token was revoked or
never valid, and end the runner.

A runner whose control plane is gone for good (an orphan) must neither spin nor fill its log,
which nothing rotates. So the backoff grows to one try per ``max_delay``; the log says when an
outage starts, when the retries reach that slow pace, every ``report_every`` while it lasts and
when it ends; and a call that fails ``give_up_after`` into an outage raises
``ControlPlaneUnreachable``, which stops the runner. A client has one outage at a time: the
runner's loops retry side by side but tell one story and give up together.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import httpx

from clawfleet.core.clock import Clock, SystemClock
from clawfleet.core.errors import ClawfleetError, Unauthenticated

log = logging.getLogger(__name__)


class RunnerRefused(ClawfleetError):
    """The control plane refused a request for good (4xx other than auth)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status


class ControlPlaneUnreachable(ClawfleetError):
    """The control plane gave no usable answer for ``RetryPolicy.give_up_after`` seconds."""

    code = "control-plane-unreachable"


@dataclass(frozen=True)
class RetryPolicy:
    first_delay: float = 0.1
    max_delay: float = 60.0
    give_up_after: float = 3600.0
    report_every: float = 300.0  # seconds between "still unreachable" lines


@dataclass
class _Outage:
    started: float  # clock.monotonic() of the first failure
    reported: float  # of the last log line about it
    slow: bool = False  # retries have reached max_delay, and the log said so


class RunnerClient:
    def __init__(
        self,
        server: str,
        instance_id: str,
        token: str,
        *,
        clock: Clock | None = None,
        policy: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.instance_id = instance_id
        self.server = server.rstrip("/")
        self.clock = clock or SystemClock()
        self.policy = policy or RetryPolicy()
        self._base = f"/api/v1/runner/instances/{instance_id}"
        self._outage: _Outage | None = None
        self._http = httpx.AsyncClient(
            base_url=self.server,
            headers={"Authorization": f"Bearer {token}", "User-Agent": "clawfleet-runner"},
            timeout=httpx.Timeout(70.0, connect=5.0),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
            transport=transport,
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def call(self, path: str, body: dict[str, Any]) -> Any:
        delay = self.policy.first_delay
        while True:
            try:
                response = await self._http.post(self._base + path, json=body)
            except httpx.TransportError as exc:
                problem = f"unreachable ({type(exc).__name__})"
            else:
                if response.status_code < 500 and response.status_code != 429:
                    self._reached()
                    return _answer(response)
                problem = f"answering {response.status_code}"
                delay = min(max(delay, _retry_after(response)), self.policy.max_delay)
            self._failed(problem, delay)
            await self.clock.sleep(delay)
            delay = min(delay * 2, self.policy.max_delay)

    def _failed(self, problem: str, delay: float) -> None:
        """Account one failed try: log per the module docstring, or give up."""
        now = self.clock.monotonic()
        outage = self._outage
        if outage is None:
            self._outage = _Outage(started=now, reported=now)
            log.warning(
                "the control plane at %s is %s; retrying with backoff up to every %gs, "
                "giving up after %s",
                self.server, problem, self.policy.max_delay, _span(self.policy.give_up_after),
            )  # fmt: skip
            return
        down = now - outage.started
        if down >= self.policy.give_up_after:
            raise ControlPlaneUnreachable(
                f"the control plane at {self.server} has been {problem} for {_span(down)}; "
                "giving up (setting CLAWFLEET_RUNNER_GIVE_UP_AFTER_SECONDS)"
            )
        if delay >= self.policy.max_delay and not outage.slow:
            outage.slow, outage.reported = True, now
            log.warning(
                "the control plane at %s is still %s after %s; retrying every %gs",
                self.server, problem, _span(down), self.policy.max_delay,
            )  # fmt: skip
        elif now - outage.reported >= self.policy.report_every:
            outage.reported = now
            log.warning(
                "the control plane at %s is still %s after %s", self.server, problem, _span(down)
            )

    def _reached(self) -> None:
        if self._outage is not None:
            down = self.clock.monotonic() - self._outage.started
            self._outage = None
            log.info("reached the control plane at %s again after %s", self.server, _span(down))

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

    async def start_failed(self, error: str, *, permanent: bool) -> None:
        await self.call("/failed", {"error": error, "permanent": permanent})


def _answer(response: httpx.Response) -> Any:
    """The JSON of a 2xx/3xx answer; the error a 4xx one means."""
    if response.status_code < 400:
        return response.json()
    detail = _detail(response)
    if response.status_code in (401, 403):
        raise Unauthenticated(f"the control plane refused this runner: {detail}")
    raise RunnerRefused(response.status_code, detail)


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("retry-after", "0")))
    except ValueError:  # an HTTP date: not sent by our server
        return 0.0


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    return str(body.get("detail") if isinstance(body, dict) else body)[:300]


def _span(seconds: float) -> str:
    """``42s``, ``5m0s``, ``1h0m``: durations in log lines and errors."""
    whole = int(seconds)
    if whole < 60:
        return f"{seconds:.3g}s" if seconds < 10 else f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60}s"
    return f"{whole // 3600}h{whole % 3600 // 60}m"
