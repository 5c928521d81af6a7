"""The server is one task group: the API and the controllers stand or fall together."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import stat
from collections.abc import Iterator
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


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """Files created as most systems create them by default: readable by everyone."""
    before = os.umask(0o022)
    yield
    os.umask(before)


def _modes(data: Path) -> dict[str, str]:
    return {
        path.name: f"{stat.S_IMODE(path.stat().st_mode):04o}" for path in [data, *data.iterdir()]
    }


@pytest.mark.usefixtures("loose_umask")
async def test_a_new_data_dir_and_its_database_are_private(
    tmp_path: Path, clock: FakeClock
) -> None:
    data = tmp_path / "data"
    plane = await build_control_plane(Settings(data_dir=data), clock)
    try:
        modes = _modes(data)
    finally:
        await plane.close()

    assert {"clawfleet.db", "clawfleet.db-wal", "clawfleet.db-shm", "admin-token"} <= set(modes)
    assert modes == {name: "0700" if name == "data" else "0600" for name in modes}


@pytest.mark.usefixtures("loose_umask")
async def test_an_existing_data_dir_is_tightened_at_start(
    tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)
    old = sqlite3.connect(data / "clawfleet.db")  # an older server's database, in WAL mode
    old.execute("PRAGMA journal_mode=WAL")
    old.execute("CREATE TABLE leftover (x)")
    old.commit()
    (data / "notes.txt").write_text("prompts")
    try:
        assert _modes(data)["clawfleet.db-wal"] == "0644"
        with caplog.at_level(logging.WARNING):
            plane = await build_control_plane(Settings(data_dir=data), clock)
        try:
            modes = _modes(data)
        finally:
            await plane.close()
    finally:
        old.close()

    assert modes["data"] == "0700"
    assert {name: mode for name, mode in modes.items() if name != "data"} == {
        name: "0600" for name in modes if name != "data"
    }
    logged = " ".join(record.getMessage() for record in caplog.records)
    assert "notes.txt 0644 -> 0600" in logged and "clawfleet.db-wal 0644 -> 0600" in logged
