"""Per-principal rate limits: the token bucket in fake time, and the real app answering 429."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from clawfleet.api.app import create_app
from clawfleet.api.ratelimit import RateLimiter, RateLimitMiddleware, RateLimits, TokenBucket
from clawfleet.core.settings import ApiSettings, Settings
from clawfleet.server import ControlPlane
from clawfleet.testing.clock import FakeClock

# -- the bucket ----------------------------------------------------------------------------------


def test_bucket_allows_its_burst_then_says_how_long_to_wait() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2.0, burst=3, clock=clock)
    assert [bucket.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take() == pytest.approx(0.5)  # one token at 2/s
    clock.advance(0.25)
    assert bucket.take() == pytest.approx(0.25)  # a refused take spends nothing
    clock.advance(0.25)
    assert bucket.take() == 0.0
    assert bucket.take() > 0


def test_bucket_refills_up_to_its_burst_only() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10.0, burst=4, clock=clock)
    for _ in range(4):
        bucket.take()
    clock.advance(3600)
    assert bucket.tokens == 4
    assert bucket.is_full()
    assert [bucket.take() for _ in range(5)][-1] > 0


def test_bucket_refuses_impossible_shapes() -> None:
    with pytest.raises(ValueError, match="rate > 0"):
        TokenBucket(rate=0, burst=5, clock=FakeClock())
    with pytest.raises(ValueError, match="never fit"):
        TokenBucket(rate=1, burst=2, clock=FakeClock()).take(3)


# -- the keyed limiter ---------------------------------------------------------------------------


def test_keys_have_independent_buckets() -> None:
    limiter = RateLimiter(FakeClock())
    assert [limiter.acquire("noisy", 1.0, 2) for _ in range(3)][-1] == pytest.approx(1.0)
    assert limiter.acquire("quiet", 1.0, 2) == 0.0
    assert limiter.acquire("noisy", 1.0, 2) > 0


def test_the_number_of_buckets_is_bounded_least_recently_used_first() -> None:
    limiter = RateLimiter(FakeClock(), max_keys=3)
    for key in ("a", "b", "c"):
        limiter.acquire(key, 1.0, 1)
    limiter.acquire("a", 1.0, 1)  # refused, and now the most recently used
    limiter.acquire("d", 1.0, 1)  # evicts "b", the least recently used
    assert len(limiter) == 3
    assert limiter.acquire("a", 1.0, 1) > 0  # "a" kept its empty bucket


def test_idle_buckets_are_dropped_as_requests_pass() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock)
    for n in range(50):
        limiter.acquire(f"client-{n}", 10.0, 5)
    clock.advance(1.0)  # every bucket is full again: the same as no bucket
    for _ in range(30):
        limiter.acquire("busy", 1000.0, 1000)
    assert len(limiter) < 5


async def test_callers_without_a_principal_are_limited_by_address() -> None:
    async def ok(scope: Scope, receive: Receive, send: Send) -> None:
        await PlainTextResponse("ok")(scope, receive, send)

    app = RateLimitMiddleware(ok, RateLimits(rate_per_second=1, burst=2), FakeClock())

    async def three_requests_from(address: str) -> list[int]:
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return [(await client.post("/api/v1/login")).status_code for _ in range(3)]

    assert await three_requests_from("10.0.0.7") == [200, 200, 429]
    assert await three_requests_from("10.0.0.8") == [200, 200, 429]


def test_settings_defaults_are_the_documented_ones() -> None:
    assert RateLimits.from_settings(ApiSettings()) == RateLimits()
    defaults = RateLimits()
    # bench/dispatch.py submits about 300 tasks/s with 32 in flight; 1200 tasks (warm-up and
    # measurement) at full speed must not be throttled.
    assert defaults.burst >= 1000 and defaults.rate_per_second >= 300
    assert defaults.runner_rate_per_second > defaults.rate_per_second


# -- the real app --------------------------------------------------------------------------------


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    api = {"rate_per_second": 0.5, "rate_burst": 5, "runner_rate_burst": 20,
           "auth_failure_rate_per_second": 0.5, "auth_failure_burst": 3}  # fmt: skip
    return Settings(data_dir=tmp_path / "data", database={"url": db_url}, api=api)


@pytest.fixture
async def limited(
    plane: ControlPlane, settings: Settings, clock: FakeClock
) -> AsyncIterator[httpx.AsyncClient]:
    """An anonymous client on the real app with the settings' limits on the fake clock."""
    state = dataclasses.replace(
        plane.app.state.api, rate_limits=RateLimits.from_settings(settings.api), clock=clock
    )
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport, base_url="http://clawfleet.test") as client:
        yield client


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_noisy_principal_gets_429_and_others_do_not(
    plane: ControlPlane, limited: httpx.AsyncClient, clock: FakeClock
) -> None:
    admin = _bearer(plane.admin_token)
    tokens = plane.app.state.api.tokens
    other = _bearer(await tokens.mint(name="second", principal="second", role="admin"))
    _, runner_token = await tokens.mint_runner("i-limited", "default")
    runner = _bearer(runner_token)

    for _ in range(5):
        assert (await limited.get("/api/v1/whoami", headers=admin)).status_code == 200
    refused = await limited.get("/api/v1/whoami", headers=admin)
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["retry-after"] == "2"  # one token at 0.5/s
    assert refused.json()["code"] == "rate-limited"
    assert "admin" in refused.json()["detail"]

    # Another principal, a runner with its own budget, and the probes are unaffected.
    assert (await limited.get("/api/v1/whoami", headers=other)).status_code == 200
    heartbeat = "/api/v1/runner/instances/i-limited/heartbeat"
    for _ in range(10):
        answer = await limited.post(heartbeat, json={}, headers=runner)
        assert answer.status_code != 429
    for _ in range(10):
        assert (await limited.get("/healthz")).status_code == 200

    clock.advance(2.0)  # the noisy one recovers one token every 2 s
    assert (await limited.get("/api/v1/whoami", headers=admin)).status_code == 200
    assert (await limited.get("/api/v1/whoami", headers=admin)).status_code == 429


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_limits_can_be_switched_off(plane: ControlPlane, clock: FakeClock) -> None:
    state = dataclasses.replace(
        plane.app.state.api, rate_limits=RateLimits(enabled=False, burst=1), clock=clock
    )
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://clawfleet.test", headers=_bearer(plane.admin_token)
    ) as client:
        for _ in range(5):
            assert (await client.get("/api/v1/whoami")).status_code == 200


def _app_at(plane: ControlPlane, settings: Settings, clock: FakeClock, address: str) -> Any:
    """A client of the real app, with the settings' limits on the fake clock, from ``address``."""
    state = dataclasses.replace(
        plane.app.state.api, rate_limits=RateLimits.from_settings(settings.api), clock=clock
    )
    transport = httpx.ASGITransport(app=create_app(state), client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://clawfleet.test")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_failed_authentications_are_throttled_per_address(
    plane: ControlPlane, settings: Settings, clock: FakeClock
) -> None:
    admin = _bearer(plane.admin_token)
    unseen = _bearer(
        await plane.app.state.api.tokens.mint(name="new", principal="new", role="admin")
    )
    guesses = [_bearer(f"cf_guess{n}") for n in range(6)]
    async with (
        _app_at(plane, settings, clock, "10.0.0.7") as guesser,
        _app_at(plane, settings, clock, "10.0.0.8") as bystander,
    ):
        assert (await guesser.get("/api/v1/whoami", headers=admin)).status_code == 200
        statuses = [(await guesser.get("/api/v1/whoami", headers=g)).status_code for g in guesses]

        assert statuses == [401, 401, 401, 429, 429, 429]
        refused = await guesser.get("/api/v1/whoami", headers=guesses[0])
        assert refused.json()["code"] == "rate-limited"
        assert refused.headers["retry-after"] == "2"  # one failure more at 0.5/s
        # a token this server accepted lately still gets in; one it never saw waits
        assert (await guesser.get("/api/v1/whoami", headers=admin)).status_code == 200
        assert (await guesser.get("/api/v1/whoami", headers=unseen)).status_code == 429
        # other addresses are not throttled
        assert (await bystander.get("/api/v1/whoami", headers=unseen)).status_code == 200
        assert (await bystander.get("/api/v1/whoami", headers=guesses[0])).status_code == 401

        clock.advance(2.0)
        assert (await guesser.get("/api/v1/whoami", headers=guesses[0])).status_code == 401
        assert (await guesser.get("/api/v1/whoami", headers=guesses[0])).status_code == 429


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_throttled_address_keeps_its_signed_in_users(
    plane: ControlPlane, settings: Settings, clock: FakeClock, api: httpx.AsyncClient
) -> None:
    password = "correct horse battery staple"
    await api.post("/api/v1/users", json={"name": "alice", "password": password})
    async with _app_at(plane, settings, clock, "10.0.0.7") as client:
        session = await client.post(
            "/api/v1/auth/login", json={"username": "alice", "password": password}
        )
        alice = _bearer(session.json()["accessToken"])
        for n in range(4):
            await client.get("/api/v1/whoami", headers=_bearer(f"not.a.jwt{n}"))
        assert (await client.get("/api/v1/whoami", headers=_bearer("x.y.z"))).status_code == 429

        assert (await client.get("/api/v1/whoami", headers=alice)).status_code == 200
