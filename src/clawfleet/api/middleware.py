"""Pure ASGI middlewares at the edge of every request: request id and security headers,
authentication, the rate limit (``api/ratelimit.py``) and the body limit, in that order.

Authentication lives here, in one place on the request path: every route except the health
probes and sign-in needs a valid bearer token before any body is read or any handler runs.
"""

from __future__ import annotations

import logging
import math
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clawfleet.api.problems import error_response, internal_error_response
from clawfleet.api.ratelimit import (
    FailedAuthThrottle,
    RateLimitMiddleware,
    RateLimits,
    client_address,
)
from clawfleet.api.state import ApiState
from clawfleet.core.clock import Clock
from clawfleet.core.errors import (
    Forbidden,
    PayloadTooLarge,
    RateLimited,
    TemporaryError,
    Unauthenticated,
)
from clawfleet.core.logging import principal_var, request_id_var

log = logging.getLogger("clawfleet.api.access")
failures = logging.getLogger(__name__)

# The API speaks JSON to programs and the CLI, authenticated by bearer tokens, never cookies:
# so no CORS headers are sent (browsers refuse cross-origin reads) and there is nothing for
# CSRF to ride on. These headers keep responses out of frames, caches and content sniffing.
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
)

DOCS_PATH = "/api/v1/docs"  # Swagger UI needs its scripts: no content-security-policy there

# The runner protocol's routine calls: every runner heartbeats every few seconds and holds two
# long polls, so at INFO they would be most of the log. They are logged at DEBUG when they
# succeed; their errors, and every other request, at INFO.
ROUTINE_PATHS = re.compile(
    r"/api/v1/runner/instances/[^/]+/(heartbeat|claim|commands|commands/ack|runs/[^/]+/events)"
)

PUBLIC_PATHS = frozenset(
    {"/healthz", "/readyz", "/api/v1/auth/login", "/api/v1/auth/refresh", "/api/v1/auth/logout"}
)


class RequestContextMiddleware:
    """Assigns a request id, echoes it in ``X-Request-Id`` and logs one line per request (the
    runner protocol's routine ones at DEBUG: ``ROUTINE_PATHS``).

    It is also where an unexpected exception ends, from a handler or a middleware: answered
    here, the 500 carries the request id and the security headers like every other response
    (Starlette's own last-resort handler sits outside this middleware and would send neither).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex[:16]
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500
        responded = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                status, responded = message["status"], True
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                    *(SECURITY_HEADERS if scope["path"] != DOCS_PATH else SECURITY_HEADERS[:-1]),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            if responded:
                raise  # too late for an answer; the server drops the connection
            failures.exception("unhandled error in request %s", request_id)
            await internal_error_response()(scope, receive, send_with_id)
        finally:
            elapsed = (time.perf_counter() - started) * 1000
            routine = status < 400 and ROUTINE_PATHS.fullmatch(scope["path"]) is not None
            level = logging.DEBUG if routine else logging.INFO
            log.log(level, "%s %s %d %.1fms", scope["method"], scope["path"], status, elapsed)
            request_id_var.reset(token)
            principal_var.set(None)


class BodyLimitMiddleware:
    """Refuses bodies over the limit with 413, whether announced by Content-Length or not."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = PayloadTooLarge(
            f"request body is larger than the limit of {self.max_bytes} bytes "
            "(setting api.max_body_bytes)"
        )
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    length = 0
                if length > self.max_bytes:
                    await error_response(too_large)(scope, receive, send)
                    return
        if scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        # Read the body here, bounded, and replay it: an error raised while the framework reads
        # the body would come out as a generic 400.
        chunks: list[bytes] = []
        seen = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_bytes:
                await error_response(too_large)(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            token = token.strip()
            return token if scheme.lower() == "bearer" and token else None
    return None


class AuthenticationMiddleware:
    def __init__(self, app: ASGIApp, rate_limits: RateLimits, clock: Clock) -> None:
        self.app = app
        self.failures = FailedAuthThrottle(rate_limits, clock)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        state: ApiState = scope["app"].state.api
        token = _bearer(scope)
        try:
            if token is None:
                raise Unauthenticated(
                    "this endpoint needs a bearer token (Authorization: Bearer ...); "
                    "the local admin token is in <data dir>/admin-token"
                )
            address = client_address(scope)
            wait = self.failures.wait(address)
            if wait > 0 and not state.sessions.vouched_for(token):
                raise RateLimited(
                    f"too many failed authentications from {address}; "
                    f"retry after {max(1, math.ceil(wait))}s",
                    retry_after=wait,
                )
            try:
                principal = await state.sessions.authenticate(token)
            except Unauthenticated:
                self.failures.failed(address)
                raise
        except (Unauthenticated, RateLimited, TemporaryError) as exc:
            await error_response(exc)(scope, receive, send)
            return
        if principal.role == "runner" and not _runner_may(principal.name, scope["path"]):
            forbidden = Forbidden(
                "a runner token is good for its own instance's runner endpoints only"
            )
            await error_response(forbidden)(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        principal_var.set(principal.name)
        await self.app(scope, receive, send)


def _runner_may(principal: str, path: str) -> bool:
    instance_id = principal.removeprefix("instance:")
    return path.startswith(f"/api/v1/runner/instances/{instance_id}/")


def install_middleware(
    app: Any, max_body_bytes: int, rate_limits: RateLimits, clock: Clock
) -> None:
    # Starlette runs the last added outermost: request id, then auth (so no body is buffered
    # for an anonymous caller; it throttles failed authentications itself), then the rate
    # limit (it needs the principal, and a refused caller's body is never buffered either),
    # then the body limit.
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes)
    app.add_middleware(RateLimitMiddleware, limits=rate_limits, clock=clock)
    app.add_middleware(AuthenticationMiddleware, rate_limits=rate_limits, clock=clock)
    app.add_middleware(RequestContextMiddleware)
