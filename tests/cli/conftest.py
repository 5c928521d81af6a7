"""The real CLI, in-process (Typer's CliRunner), against the real app served over HTTP.

The control plane runs in a thread with its own event loop, served by uvicorn on a free port of
127.0.0.1, on SQLite in a temporary data dir; no controllers run, so agents never get instances
and tasks stay pending unless a test moves them. One server per test module: each test works
in a tenant of its own (the ``scope`` fixture). Tests that need processes, real time or signals
are in tests/e2e.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner, Result

from clawfleet.cli.main import app
from clawfleet.core.settings import Settings
from clawfleet.domain.lifecycle import InstancePhase
from clawfleet.domain.resources import ResourceKey
from clawfleet.schemas.runner import CompleteIn
from clawfleet.server import ControlPlane, build_control_plane
from clawfleet.testing.postgres import free_port

_tenants = itertools.count(1)


@dataclass
class LiveServer:
    url: str
    data_dir: Path
    plane: ControlPlane
    loop: asyncio.AbstractEventLoop

    def call(self, coro: Any) -> Any:
        """Run a coroutine on the server's loop (to act as the controllers would)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def run_next_task(self, tenant: str, project: str, agent: str, **result: Any) -> str:
        """Act as the controller and a runner: give ``agent`` an instance, claim its next task
        and complete that run with ``result`` (a runner's complete body); the run id."""

        async def act() -> str:
            state = self.plane.app.state.api
            key = ResourceKey("Agent", tenant, project, agent)
            record = next(a for a in await state.agents.all_agents() if a.key == key)
            row = await state.instances.create(record, "local")
            await state.instances.transition(row, InstancePhase.STARTING)
            await state.dispatcher.protocol.register(row.id)
            run = (await state.dispatcher.claims.claim(row.id, 1, 0))[0]["id"]
            body = CompleteIn.model_validate({"status": "succeeded", **result})
            await state.dispatcher.outcomes.complete(row.id, run, body)
            return str(run)

        return str(self.call(act()))


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("cli") / "data", port=free_port())
    started = threading.Event()
    box: dict[str, Any] = {}

    async def serve() -> None:
        plane = await build_control_plane(settings)
        await plane.start()
        config = uvicorn.Config(
            plane.app, host="127.0.0.1", port=settings.port, log_config=None,
            access_log=False, lifespan="off",
        )  # fmt: skip
        server = uvicorn.Server(config)
        box.update(plane=plane, server=server, loop=asyncio.get_running_loop())
        serving = asyncio.create_task(server.serve())
        while not server.started and not serving.done():
            await asyncio.sleep(0.01)
        started.set()
        try:
            await serving
        finally:
            await plane.close()

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    thread.start()
    assert started.wait(60), "the in-process server did not start"
    yield LiveServer(settings.base_url, settings.resolved_data_dir, box["plane"], box["loop"])
    box["loop"].call_soon_threadsafe(box["plane"].notifier.shutdown)  # answer open long polls
    box["server"].should_exit = True
    thread.join(30)


@dataclass
class Cli:
    """``cli("get", "agents")`` runs `clawfleet get agents` as a user in another terminal on
    this machine would: the server's URL and data dir exported, nothing else configured."""

    live: LiveServer
    home: Path
    env: dict[str, str | None]

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """Call the API as the bootstrap admin (to set up what the CLI cannot)."""
        token = (self.live.data_dir / "admin-token").read_text().strip()
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=self.live.url, headers=headers, timeout=30) as http:
            answer = http.request(method, f"/api/v1{path}", json=body)
        assert answer.status_code < 300, answer.text
        return answer.json()

    def __call__(self, *args: str, input: str | None = None, **env: str | None) -> Result:
        return CliRunner().invoke(
            app, list(args), input=input, env={**self.env, **env}, prog_name="clawfleet"
        )


@pytest.fixture
def cli(live: LiveServer, tmp_path: Path) -> Cli:
    env: dict[str, str | None] = {
        "CLAWFLEET_SERVER": live.url,
        "CLAWFLEET_DATA_DIR": str(live.data_dir),
        "CLAWFLEET_CONFIG": str(tmp_path / "client-config"),
        "HOME": str(tmp_path),
        "CLAWFLEET_TOKEN": None,
        "CLAWFLEET_TENANT": None,
        "CLAWFLEET_PROJECT": None,
        "CLAWFLEET_PORT": None,
    }
    return Cli(live, tmp_path, env)


@pytest.fixture
def scope(cli: Cli) -> tuple[str, str]:
    """A tenant and a project of this test's own: (tenant, project)."""
    tenant = f"t{next(_tenants)}"
    manifest = (
        f"kind: Tenant\nmetadata: {{name: {tenant}}}\n---\n"
        f"kind: Project\nmetadata: {{name: web, tenant: {tenant}}}\n"
    )
    done = cli("apply", "-f", "-", input=manifest)
    assert done.exit_code == 0, done.output
    return tenant, "web"
