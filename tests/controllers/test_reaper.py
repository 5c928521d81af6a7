"""The run reaper keeps the runtimes maintained through the Runtime seam, on its clock."""

from __future__ import annotations

from clawfleet.controllers.reaper import MAINTAIN_EVERY, RunReaper
from clawfleet.server import ControlPlane
from clawfleet.testing.clock import FakeClock
from clawfleet.testing.fake_runtime import FakeRuntime


async def test_runtimes_are_maintained_every_thirty_seconds(
    plane: ControlPlane, clock: FakeClock
) -> None:
    runtime = FakeRuntime("local", clock=clock)
    reaper = RunReaper(plane.db, clock, plane.notifier, plane.dispatcher, {"local": runtime})
    await reaper.reconcile_once()
    assert runtime.maintained == 1
    clock.advance(MAINTAIN_EVERY - 1)
    await reaper.reconcile_once()
    assert runtime.maintained == 1
    clock.advance(1)
    await reaper.reconcile_once()
    assert runtime.maintained == 2
