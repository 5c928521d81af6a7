"""Per-principal request rate limits: token buckets at the edge, so one noisy client cannot starve
the others.

Every authenticated principal gets its own bucket; a request without a principal (only the few
public endpoints other than the health probes) is counted against its client address. Runners
(role ``runner``) get a separate, larger budget, because heartbeats, claims, event batches and
completions are their normal traffic. A refused request is a 429 ``application/problem+json``
with code ``rate-limited`` and a ``Retry-After`` header in whole seconds.

Buckets live in this process only: with several API replicas each enforces its own budget, so a
client may get up to the budget times the number of replicas. The buckets are bounded in number;
an idle bucket refills to full, which is exactly a new bucket, so idle ones are dropped.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from clawfleet.api.problems import problem_response
from clawfleet.core.clock import Clock
from clawfleet.core.settings import ApiSettings

log = logging.getLogger(__name__)

EXEMPT_PATHS = frozenset({"/healthz", "/readyz"})
MAX_KEYS = 100_000
_SWEEP_PER_CALL = 2  # idle buckets dropped per request: amortized O(1), no background task


class TokenBucket:
    """``burst`` tokens, refilled at ``rate`` per second of ``clock.monotonic()``; starts full."""

    def __init__(self, rate: float, burst: float, clock: Clock) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"a token bucket needs rate > 0 and burst >= 1 (got {rate}, {burst})")
        self.rate = rate
        self.burst = float(burst)
        self.clock = clock
        self._tokens = self.burst
        self._at = clock.monotonic()
        self.refusing = False  # set while refusals go on; lets callers log once per episode

    @property
    def tokens(self) -> float:
        """The tokens available now."""
        self._refill()
        return self._tokens

    def take(self, cost: float = 1.0) -> float:
        """Take ``cost`` tokens if they are there and return 0.0; otherwise take nothing and
        return the seconds until they will be (always > 0). Raises ValueError for a cost that
        can never be met (more than ``burst``)."""
        if cost > self.burst:
            raise ValueError(f"a cost of {cost} can never fit a burst of {self.burst:g}")
        self._refill()
        if self._tokens >= cost:
            self._tokens -= cost
            return 0.0
        return (cost - self._tokens) / self.rate

    def is_full(self) -> bool:
        """True when the bucket holds ``burst`` tokens: it is then the same as a new one."""
        return self.tokens >= self.burst

    def _refill(self) -> None:
        now = self.clock.monotonic()
        if now > self._at:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now


class RateLimiter:
    """Token buckets by key, at most ``max_keys`` of them (least recently used go first, and
    idle full buckets are dropped as requests pass). Not thread-safe; ``acquire`` does not
    await, so it is atomic under asyncio."""

    def __init__(self, clock: Clock, *, max_keys: int = MAX_KEYS) -> None:
        if max_keys < 1:
            raise ValueError(f"max_keys must be at least 1 (got {max_keys})")
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def acquire(self, key: str, rate: float, burst: float) -> float:
        """Spend one token of ``key``'s bucket (created full with ``rate`` and ``burst`` on first
        use). Returns 0.0 when allowed, else the seconds until a token will be there."""
        bucket = self._buckets.get(key)
        if bucket is None or bucket.rate != rate or bucket.burst != burst:
            bucket = TokenBucket(rate, burst, self.clock)
            self._buckets[key] = bucket
        self._buckets.move_to_end(key)
        self._sweep()
        wait = bucket.take()
        if wait and not bucket.refusing:
            log.warning("rate limit reached for %s (%g/s, burst %g)", key, rate, burst)
        bucket.refusing = wait > 0
        return wait

    def wait(self, key: str) -> float:
        """The seconds until ``key``'s bucket holds a token again, spending nothing; 0.0 if it
        holds one now (or ``key`` has no bucket)."""
        bucket = self._buckets.get(key)
        if bucket is None or bucket.tokens >= 1:
            return 0.0
        return (1 - bucket.tokens) / bucket.rate

    def _sweep(self) -> None:
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        for _ in range(_SWEEP_PER_CALL):
            oldest_key = next(iter(self._buckets))
            if len(self._buckets) == 1 or not self._buckets[oldest_key].is_full():
                return
            del self._buckets[oldest_key]


@dataclass(frozen=True)
class RateLimits:
    """The budgets: requests per second and burst, for runners and for everyone else."""

    enabled: bool = True
    rate_per_second: float = 500.0
    burst: int = 1000
    runner_rate_per_second: float = 2000.0
    runner_burst: int = 4000
    auth_failure_rate_per_second: float = 1.0
    auth_failure_burst: int = 30
    max_keys: int = MAX_KEYS

    @classmethod
    def from_settings(cls, api: ApiSettings) -> RateLimits:
        return cls(
            enabled=api.rate_limits_enabled,
            rate_per_second=api.rate_per_second,
            burst=api.rate_burst,
            runner_rate_per_second=api.runner_rate_per_second,
            runner_burst=api.runner_rate_burst,
            auth_failure_rate_per_second=api.auth_failure_rate_per_second,
            auth_failure_burst=api.auth_failure_burst,
        )


class FailedAuthThrottle:
    """Failed authentications per client address, in a token bucket of their own.

    Authentication runs before the per-principal limit, so without this a caller with bad
    tokens would never be limited: every guess would cost a hash and a database read. Once an
    address has spent its failures, its requests are refused with 429 before their token is
    looked up, unless the token is vouched for without a read
    (``SessionService.vouched_for``), so the address's legitimate clients keep working.
    """

    def __init__(self, limits: RateLimits, clock: Clock) -> None:
        self.limits = limits
        self.limiter = RateLimiter(clock, max_keys=limits.max_keys)

    def wait(self, address: str) -> float:
        """Seconds until the address may fail again; 0.0 when it is not throttled."""
        return self.limiter.wait(_failures_of(address)) if self.limits.enabled else 0.0

    def failed(self, address: str) -> None:
        if self.limits.enabled:
            limits = self.limits
            self.limiter.acquire(
                _failures_of(address),
                limits.auth_failure_rate_per_second,
                limits.auth_failure_burst,
            )


def _failures_of(address: str) -> str:
    return f"failed authentications from address {address}"


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class RateLimitMiddleware:
    """Refuses a request with 429 when its principal's (or address's) bucket is empty.

    Must run after authentication, which leaves the ``Principal`` in ``scope["state"]``.
    """

    def __init__(self, app: ASGIApp, limits: RateLimits, clock: Clock) -> None:
        self.app = app
        self.limits = limits
        self.limiter = RateLimiter(clock, max_keys=limits.max_keys)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.limits.enabled or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        key, rate, burst = self._budget(scope)
        wait = self.limiter.acquire(key, rate, burst)
        if wait > 0:
            retry_after = max(1, math.ceil(wait))
            response = problem_response(
                429,
                "Too many requests",
                f"too many requests from {key}: the limit is {rate:g} per second with bursts "
                f"of {burst}; retry after {retry_after}s",
                "rate-limited",
                headers={"Retry-After": str(retry_after)},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _budget(self, scope: Scope) -> tuple[str, float, int]:
        limits = self.limits
        principal: Any = (scope.get("state") or {}).get("principal")
        if principal is None:
            key = f"address {client_address(scope)}"
            return key, limits.rate_per_second, limits.burst
        tenant = getattr(principal, "tenant", "") or ""
        key = f"principal {tenant + '/' if tenant else ''}{principal.name}"
        if getattr(principal, "role", None) == "runner":
            return key, limits.runner_rate_per_second, limits.runner_burst
        return key, limits.rate_per_second, limits.burst
