"""The server is one task group: the API and the controllers stand or fall together."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from clawfleet.controllers.base import Controller
from clawfleet.core.settings import Settings
from clawfleet.server import ControlPlane, build_control_plane, check_listen_address, serve_plane
from clawfleet.testing.clock import FakeClock
from clawfleet.testing.postgres import free_port


class BrokenController(Controller):
    """A controller whose loop itself fails (``Controller.run`` survives a failing pass)."""

    name = "broken"

    def __init__(self, plane: ControlPlane, clock: FakeClock, trigger: asyncio.Event) -> None:
        super().__init__(plane.db, clock, plane.notifier)
        self.trigger = trigger

    async def run(self, stopping: asyncio.Event) -> None:
        await self.trigger.wait()
        raise RuntimeError("the broken controller's loop failed")


async def test_a_failing_controller_loop_stops_the_api_and_the_other_controllers(
    tmp_path: Path, clock: FakeClock
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        database={"url": f"sqlite+aiosqlite:///{tmp_path / 'clawfleet.db'}"},
        port=free_port(),
    )
    plane = await build_control_plane(settings, clock)
    trigger, up = asyncio.Event(), asyncio.Event()
    plane.controllers.append(BrokenController(plane, clock, trigger))
    before = asyncio.all_tasks()
    serving = asyncio.ensure_future(serve_plane(plane, lambda _: up.set()))
    try:
        await asyncio.wait_for(up.wait(), 30)
        async with httpx.AsyncClient(base_url=settings.base_url) as http:
            assert (await http.get("/readyz")).status_code == 200

        trigger.set()
        with pytest.raises(RuntimeError, match="the broken controller's loop failed"):
            await asyncio.wait_for(serving, 30)
    finally:
        serving.cancel()
        await plane.close()

    check_listen_address(settings.host, settings.port)  # the API no longer listens
    assert asyncio.all_tasks() - before - {asyncio.current_task()} == set()
