"""A real runner against the real app, in one process and in fake time.

The runner talks HTTP to the app through ``Wire`` (the app in-process, which can also be taken
down); its agent programs are real processes, found again by their working directory.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from clawfleet.core.settings import RunnerSettings
from clawfleet.domain.lifecycle import InstancePhase
from clawfleet.schemas.agents import AgentIn
from clawfleet.server import SYSTEM, ControlPlane
from tests.factories import agent

BASE_URL = "http://clawfleet.test"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """These tests are about the runner: the real app on SQLite is enough (the store is tested
    on both databases elsewhere), and SQLite runs inline, so FakeClock reaches every wake-up."""
    return f"sqlite+aiosqlite:///{tmp_path / 'clawfleet.db'}"


class Wire(httpx.AsyncBaseTransport):
    """The app in-process as the runner's transport, with a record of each answer; ``down``
    refuses every connection, as a control plane that is gone does."""

    def __init__(self, app: Any) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.down = False
        self.answers: list[tuple[str, int]] = []  # (last path segment, status)
        self._changed = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        response = await self.inner.handle_async_request(request)
        self.answers.append((request.url.path.rsplit("/", 1)[-1], response.status_code))
        self._changed.set()
        return response

    async def answered(self, what: str, status: int = 200, *, within: float = 30) -> None:
        """Wait (in real time: agent programs start in real time) for an answer to ``what``."""
        async with asyncio.timeout(within):
            while (what, status) not in self.answers:
                self._changed.clear()
                await self._changed.wait()


@dataclass
class Instance:
    id: str
    token_id: str
    token: str
    workdir: Path

    def settings(self, **overrides: Any) -> RunnerSettings:
        return RunnerSettings(server=BASE_URL, instance=self.id, token=self.token, **overrides)


@pytest.fixture
def wire(plane: ControlPlane) -> Wire:
    return Wire(plane.app)


@pytest.fixture
def launch(
    plane: ControlPlane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Any]:
    """Declare an agent and its one instance as the controller would, up to the runner's start:
    the instance is Starting, its token minted, the runner's working directory current."""

    async def launch(**spec: Any) -> Instance:
        state = plane.app.state.api
        await state.resources.apply(SYSTEM, AgentIn.model_validate(agent("a", **spec)))
        record = (await state.agents.all_agents())[0]
        row = await state.instances.create(record, "local")
        await state.instances.transition(row, InstancePhase.STARTING)
        token_id, token = await state.tokens.mint_runner(row.id, "default")
        workdir = tmp_path / "work"
        workdir.mkdir()
        monkeypatch.chdir(workdir)
        return Instance(row.id, token_id, token, workdir)

    return launch


def programs_in(workdir: Path) -> list[int]:
    """Live processes (not zombies) working in ``workdir``, other than this one."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if cwd == str(workdir) and state != "Z":
            found.append(int(entry.name))
    return found


def runner_env() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", os.defpath)}
