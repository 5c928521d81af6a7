"""The composition root: builds the store, services and API from settings, and serves them.

Start-up order: data dir → secret key → database (SQLite is migrated here; PostgreSQL must
already be at head, via `clawfleet db upgrade`) → admin token → default tenant and project → API.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI
from pydantic import ValidationError

from clawfleet.api.app import create_app
from clawfleet.api.ratelimit import RateLimits
from clawfleet.api.state import ApiState
from clawfleet.controllers.agents import AgentController, AgentControllerConfig
from clawfleet.controllers.base import Controller
from clawfleet.controllers.reaper import RunReaper
from clawfleet.core.clock import Clock, SystemClock
from clawfleet.core.errors import ConfigurationError
from clawfleet.core.paths import (
    ADMIN_TOKEN_FILE,
    SECRET_KEY_FILE,
    read_private_file,
    tighten_private_dir,
    write_private_file,
)
from clawfleet.core.settings import Settings
from clawfleet.core.version import clawfleet_version
from clawfleet.runtimes.base import Handle, Runtime
from clawfleet.runtimes.local import LocalRuntime
from clawfleet.schemas.tenants import ProjectIn, Quota, TenantIn
from clawfleet.services.agents import AgentService
from clawfleet.services.audit import AuditLog
from clawfleet.services.bindings import BindingIndex
from clawfleet.services.context import DEFAULT_PROJECT, DEFAULT_TENANT, Principal, RequestContext
from clawfleet.services.dispatch import DispatchConfig, Dispatcher
from clawfleet.services.identity import IdentityService
from clawfleet.services.instances import InstanceService
from clawfleet.services.resources import Limits, ResourceService, kind_hooks
from clawfleet.services.runner_failures import RunnerFailures
from clawfleet.services.runs import RunService
from clawfleet.services.secret_box import SecretBox, generate_key
from clawfleet.services.sessions import SessionService
from clawfleet.services.task_waits import TaskWaits
from clawfleet.services.tasks import TaskService
from clawfleet.services.tokens import TokenService
from clawfleet.store import migrate
from clawfleet.store.db import Database
from clawfleet.store.notify import Notifier, PostgresNotifier

log = logging.getLogger(__name__)

SYSTEM = RequestContext(principal=Principal(name="system", role="admin"))


# Passed from the control plane's environment to runners (nothing else is).
PASS_THROUGH_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH", "TZ")


@dataclass
class ControlPlane:
    settings: Settings
    db: Database
    app: FastAPI
    admin_token: str
    notifier: Notifier
    dispatcher: Dispatcher
    runtimes: dict[str, Runtime]
    controllers: list[Controller] = field(default_factory=list)

    async def start(self) -> None:
        await self.notifier.start()
        # Runners kept working while we were away; give them one lease period to check in.
        await self.dispatcher.reaper.extend_leases()

    async def close(self) -> None:
        await self.notifier.close()
        await self.db.close()


async def prepare_database(settings: Settings) -> Database:
    db = Database(settings.database_url, pool_size=settings.database.pool_size)
    if db.is_sqlite:
        await migrate.upgrade(db)
        return db
    current, head = await migrate.current_revision(db), migrate.head_revision()
    if current != head:
        await db.close()
        raise ConfigurationError(
            f"the database schema is at {current or 'nothing'} but this server needs {head}; "
            "run `clawfleet db upgrade` first"
        )
    return db


def load_secret_box(settings: Settings) -> SecretBox:
    key = settings.secrets.key.get_secret_value()
    if not key:
        path = settings.resolved_data_dir / SECRET_KEY_FILE
        key = read_private_file(path) or ""
        if not key:
            key = generate_key()
            write_private_file(path, key + "\n")
            log.info("created a new secret key in %s", path)
    return SecretBox(key)


async def ensure_admin_token(settings: Settings, tokens: TokenService) -> str:
    """Reuse the token in the data dir if it still works; otherwise mint and write a new one.

    With SQLite the data dir owns the database, so a new token replaces the old one. Several
    servers may share one PostgreSQL database, each with its own data dir: there a new token is
    added and the others' tokens stay valid.
    """
    path = settings.resolved_data_dir / ADMIN_TOKEN_FILE
    existing = read_private_file(path)
    if existing and await tokens.is_valid(existing):
        return existing
    token = await tokens.new_bootstrap_admin(replace_others=settings.is_sqlite)
    write_private_file(path, token + "\n")
    log.info("wrote a new admin token to %s", path)
    return token


async def build_control_plane(settings: Settings, clock: Clock | None = None) -> ControlPlane:
    clock = clock or SystemClock()
    tenant_quota = _tenant_quota(settings)
    if changed := tighten_private_dir(settings.resolved_data_dir):
        log.warning("took group and other access away from %s", ", ".join(changed))
    box = load_secret_box(settings)
    db = await prepare_database(settings)
    tokens = TokenService(db, clock)
    admin_token = await ensure_admin_token(settings, tokens)
    limits = Limits(
        default_page_size=settings.api.default_page_size,
        max_page_size=settings.api.max_page_size,
        idempotency_ttl_seconds=settings.api.idempotency_ttl_seconds,
    )
    bindings = BindingIndex(db, clock)
    resources = ResourceService(
        db, clock, box, limits,
        hooks=kind_hooks(box, tokens, clock, tenant_quota=tenant_quota),
        on_change=_invalidate_bindings(bindings),
    )  # fmt: skip
    await resources.ensure(
        SYSTEM, TenantIn.model_validate({"kind": "Tenant", "metadata": {"name": DEFAULT_TENANT}})
    )
    await resources.ensure(
        SYSTEM,
        ProjectIn.model_validate(
            {"kind": "Project", "metadata": {"name": DEFAULT_PROJECT, "tenant": DEFAULT_TENANT}}
        ),
    )
    notifier: Notifier = (
        Notifier(clock) if db.is_sqlite else PostgresNotifier(_asyncpg_dsn(db.url), clock)
    )
    dispatch = settings.dispatch
    dispatcher = Dispatcher(
        db,
        clock,
        notifier,
        DispatchConfig(
            lease_seconds=dispatch.lease_seconds, heartbeat_seconds=dispatch.heartbeat_seconds
        ),
    )
    instances = InstanceService(db, clock, notifier)
    agents = AgentService(db, clock, box)
    local = LocalRuntime(settings.resolved_data_dir / "instances", clock=clock)
    runtimes: dict[str, Runtime] = {local.name: local}
    sessions = SessionService(db, clock, tokens, bindings, box)
    state = ApiState(
        db=db,
        tokens=tokens,
        sessions=sessions,
        identity=IdentityService(db, clock, tokens, sessions),
        audit=AuditLog(db, clock),
        resources=resources,
        agents=agents,
        tasks=TaskService(db, clock, notifier),
        runs=RunService(db, clock),
        task_waits=TaskWaits(db, clock, notifier),
        dispatcher=dispatcher,
        instances=instances,
        runner_failures=RunnerFailures(db, clock, notifier),
        notifier=notifier,
        logs=_log_reader(runtimes),
        max_body_bytes=settings.api.max_body_bytes,
        version=clawfleet_version(),
        rate_limits=RateLimits.from_settings(settings.api),
        clock=clock,
    )
    config = AgentControllerConfig(
        server_url=settings.base_url,
        runner_command=(sys.executable, "-m", "clawfleet", "runner"),
        base_env={k: v for k in PASS_THROUGH_ENV if (v := os.environ.get(k))},
        lost_after=dispatch.lost_after_seconds,
    )
    controllers: list[Controller] = [
        AgentController(
            db, clock, notifier, agents=agents, instances=instances, tokens=tokens,
            dispatcher=dispatcher, runtimes=runtimes, config=config,
        ),
        RunReaper(db, clock, notifier, dispatcher, runtimes),
    ]  # fmt: skip
    return ControlPlane(
        settings, db, create_app(state), admin_token, notifier, dispatcher, runtimes, controllers
    )


def _tenant_quota(settings: Settings) -> dict[str, Any]:
    """The default tenant quota of the settings, checked as a Tenant's spec.quota would be."""
    try:
        quota = Quota.model_validate(settings.quotas.tenant_default)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigurationError(
            f"setting quotas.tenant_default.{where}: {first['msg']}; use the fields of a "
            "Tenant's spec.quota (agents, instances, cpu, memory, concurrentRuns, storedBytes)"
        ) from exc
    return quota.model_dump(mode="json", by_alias=True, exclude_none=True)


def _invalidate_bindings(bindings: BindingIndex) -> Callable[[str], None]:
    def changed(kind: str) -> None:
        if kind == "RoleBinding":
            bindings.invalidate()

    return changed


def _asyncpg_dsn(url: str) -> str:
    return "postgresql://" + url.split("://", 1)[1]


def _log_reader(runtimes: dict[str, Runtime]) -> Any:
    def read(
        runtime: str, handle: Mapping[str, Any], *, follow: bool, tail: int | None
    ) -> AsyncIterator[str]:
        backend = runtimes[runtime]
        ref = Handle(
            handle["runtime"], handle["instance_id"], handle["ref"], handle.get("labels") or {}
        )
        return backend.logs(ref, follow=follow, tail=tail)

    return read


def check_listen_address(host: str, port: int) -> None:
    """Fail early, with a clear message, when the address cannot be bound."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigurationError(
                f"cannot listen on {host}:{port} ({exc.strerror}); stop whatever uses it or "
                "choose another address with --host/--port"
            ) from exc


async def serve(settings: Settings, on_ready: Callable[[ControlPlane], None] | None = None) -> None:
    """Serve until SIGINT/SIGTERM, then shut down cleanly."""
    check_listen_address(settings.host, settings.port)
    plane = await build_control_plane(settings)
    try:
        await serve_plane(plane, on_ready)
    finally:
        await plane.close()


async def serve_plane(
    plane: ControlPlane, on_ready: Callable[[ControlPlane], None] | None = None
) -> None:
    """Serve the API and run the controllers, side by side in one task group, until the API
    server exits (SIGINT/SIGTERM) or one of them fails: that cancels the others, and its error
    is raised, rather than leaving a server up without its controllers."""
    settings = plane.settings
    config = uvicorn.Config(
        plane.app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=10,
    )
    server = uvicorn.Server(config)
    stopping = asyncio.Event()
    await plane.start()
    try:
        async with asyncio.TaskGroup() as group:
            serving = group.create_task(_serve_http(server, plane.notifier, stopping))
            # uvicorn exposes a flag, not an event, for "listening".
            while not server.started and not serving.done():  # noqa: ASYNC110
                await asyncio.sleep(0.02)
            for controller in plane.controllers:
                group.create_task(controller.run(stopping))
            group.create_task(_release_long_polls(server, plane.notifier))
            if server.started and on_ready is not None:
                on_ready(plane)
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None  # the one that failed; the others were cancelled


async def _serve_http(server: uvicorn.Server, notifier: Notifier, stopping: asyncio.Event) -> None:
    """Run uvicorn until it exits, then tell the controllers to stop. Cancelled (a sibling
    failed), it still shuts down gracefully: open requests finish and the sockets close."""
    serving = asyncio.ensure_future(server.serve())
    try:
        await asyncio.shield(serving)
    except asyncio.CancelledError:
        server.should_exit = True
        notifier.shutdown()  # its sibling that would have released the long polls is gone too
        await serving
        raise
    finally:
        stopping.set()


async def _release_long_polls(server: uvicorn.Server, notifier: Notifier) -> None:
    """When shutdown starts, answer open long polls at once so it can finish gracefully."""
    while not server.should_exit:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.1)
    notifier.shutdown()


async def upgrade_database(settings: Settings) -> tuple[str | None, str]:
    db = Database(settings.database_url)
    try:
        before = await migrate.current_revision(db)
        await migrate.upgrade(db)
        return before, migrate.head_revision()
    finally:
        await db.close()


def run(settings: Settings, on_ready: Callable[[ControlPlane], None] | None = None) -> None:
    asyncio.run(serve(settings, on_ready))
