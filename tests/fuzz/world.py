"""The control plane the fuzzer talks to, built and seeded inside the event loop that serves it.

schemathesis calls an ASGI app from one event-loop thread of its own, and the database engine
must live in the loop that uses it. So ``FuzzTarget`` is an ASGI app whose lifespan startup
builds the control plane and seeds it, and which then hands every request to the real app.

The seed gives path and query parameters something real to hit: two tenants with the same
objects (so the tenant user's probes of the other tenant meet real names), an instance with a
finished run, a pending task, a service account with a key, and a developer user of ``acme``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from clawfleet.core.clock import SystemClock
from clawfleet.core.settings import Settings
from clawfleet.domain.lifecycle import InstancePhase
from clawfleet.schemas.registry import MODELS_BY_KIND
from clawfleet.schemas.runner import CompleteIn
from clawfleet.schemas.tasks import TaskIn
from clawfleet.server import SYSTEM, ControlPlane, build_control_plane
from tests.factories import agent, project, secret, tenant

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

TENANTS = ("acme", "other")  # the developer is bound in acme
PROJECT = "web"
AGENT = "a1"
SECRET = "s1"
DEVELOPER = "fuzz-dev"
PASSWORD = "fuzz password 1234"
SERVICE_ACCOUNT = "ci"
# Long polls and event streams wait on the clock; the fuzzer should not wait with them.
MAX_WAIT_SECONDS = 0.05


class HastyClock(SystemClock):
    """Real wall-clock time, but every sleep and timed wait ends within ``MAX_WAIT_SECONDS``,
    and the monotonic clock jumps by the rest: a long poll answers at once as if its timeout
    had passed, so a fuzzed ``wait=60`` costs nothing. Wall-clock time is left alone, so
    tokens and leases do not expire early."""

    def __init__(self) -> None:
        self.skipped = 0.0

    def monotonic(self) -> float:
        return super().monotonic() + self.skipped

    async def sleep(self, seconds: float) -> None:
        await super().sleep(self._hurry(seconds))

    async def wait(self, futures: Collection[asyncio.Future[Any]], within: float) -> bool:
        return await super().wait(futures, self._hurry(within))

    def _hurry(self, seconds: float) -> float:
        short = min(seconds, MAX_WAIT_SECONDS)
        self.skipped += max(0.0, seconds - short)
        return short


@dataclass
class World:
    """The names the seed made, per kind of path or query parameter, and the callers' tokens."""

    tokens: dict[str, str] = field(default_factory=dict)
    names: dict[str, list[str]] = field(default_factory=dict)

    def add(self, parameter: str, value: str) -> None:
        self.names.setdefault(parameter, []).append(value)


class FuzzTarget:
    """An ASGI app that builds and seeds a control plane on lifespan startup, then serves it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.world = World()
        self._plane: ControlPlane | None = None

    @property
    def plane(self) -> ControlPlane:
        assert self._plane is not None, "the lifespan has not started"
        return self._plane

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.plane.app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._plane = await build_control_plane(self.settings, HastyClock())
                await seed(self._plane, self.world)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.plane.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def seed(plane: ControlPlane, world: World) -> None:
    state = plane.app.state.api
    world.tokens["admin"] = plane.admin_token
    for name in TENANTS:
        for doc in (tenant(name), project(PROJECT, tenant=name),
                    agent(AGENT, tenant=name, project=PROJECT),
                    secret(SECRET, name, PROJECT, key="value-123456")):  # fmt: skip
            await state.resources.apply(SYSTEM, MODELS_BY_KIND[doc["kind"]].model_validate(doc))
        world.add("tenant", name)
        record = next(a for a in await state.agents.all_agents() if a.key.tenant == name)
        row = await state.instances.create(record, "local")
        await state.instances.transition(row, InstancePhase.STARTING)
        await state.dispatcher.protocol.register(row.id)
        world.add("instance", row.name)
        world.add("instance_id", row.id)
        if name == TENANTS[0]:
            _, world.tokens["runner"] = await state.tokens.mint_runner(row.id, name)
        done = await _submit(state, name, f"done-{name}")
        run = (await state.dispatcher.claims.claim(row.id, 1, 0))[0]["id"]
        await state.dispatcher.outcomes.complete(
            row.id, run, CompleteIn.model_validate({"status": "succeeded"})
        )
        world.add("task", done)
        world.add("task", await _submit(state, name, f"pending-{name}"))
        world.add("run_id", run)
    for kind, value in (("project", PROJECT), ("agent", AGENT), ("secret", SECRET)):
        world.add(kind, value)
    await _seed_identities(plane, world)


async def _submit(state: Any, tenant_name: str, name: str) -> str:
    body = {
        "metadata": {"name": name, "tenant": tenant_name, "project": PROJECT},
        "spec": {"agent": AGENT, "prompt": "p"},
    }
    task, _ = await state.tasks.submit(SYSTEM, TaskIn.model_validate(body))
    return str(task.metadata.name)


async def _seed_identities(plane: ControlPlane, world: World) -> None:
    """A developer user of the first tenant, a service account with a key in each tenant."""
    transport = httpx.ASGITransport(app=plane.app)
    admin = {"Authorization": f"Bearer {plane.admin_token}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://fuzz.test", headers=admin
    ) as api:

        async def ok(response: Awaitable[httpx.Response]) -> dict[str, Any]:
            answer = await response
            assert answer.status_code in (200, 201), answer.text
            return dict(answer.json())

        await ok(api.post("/api/v1/users", json={"name": DEVELOPER, "password": PASSWORD}))
        subjects = [{"kind": "User", "name": DEVELOPER}]
        binding = {"kind": "RoleBinding", "metadata": {"name": "as-dev", "tenant": TENANTS[0]},
                   "spec": {"role": "developer", "subjects": subjects}}  # fmt: skip
        await ok(api.post("/api/v1/apply", json=binding))
        for name in TENANTS:
            query = {"tenant": name}
            await ok(api.post("/api/v1/serviceaccounts", params=query, json={"name": "ci"}))
            key = await ok(api.post("/api/v1/serviceaccounts/ci/keys", params=query, json={}))
            world.add("key_id", key["id"])
        session = await ok(
            api.post("/api/v1/auth/login", json={"username": DEVELOPER, "password": PASSWORD})
        )
        world.tokens["developer"] = session["accessToken"]
        world.add("name", DEVELOPER)
        world.add("rolebinding", "as-dev")
        world.add("serviceaccount", SERVICE_ACCOUNT)
