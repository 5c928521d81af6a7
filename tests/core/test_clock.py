"""The fake clock wakes sleepers and timed waits in fake time, and only then."""

from __future__ import annotations

import asyncio

from clawfleet.core.clock import SystemClock, wait_event
from clawfleet.testing.clock import FakeClock


async def test_sleep_ends_when_time_is_advanced_past_it() -> None:
    clock = FakeClock()
    sleeper = asyncio.ensure_future(clock.sleep(5))
    await clock.settle()
    assert clock.sleepers == 1
    clock.advance(4.9)
    await clock.settle()
    assert not sleeper.done()
    clock.advance(0.1)
    await clock.settle()
    assert sleeper.done()
    assert clock.sleepers == 0


async def test_wait_returns_true_when_a_future_completes_first() -> None:
    clock = FakeClock()
    event = asyncio.Event()
    waiting = asyncio.ensure_future(wait_event(clock, event, 30))
    await clock.settle()
    event.set()
    assert await waiting is True
    assert clock.sleepers == 0


async def test_wait_times_out_in_fake_time() -> None:
    clock = FakeClock()
    waiting = asyncio.ensure_future(wait_event(clock, asyncio.Event(), 30))
    await clock.run_for(29)
    assert not waiting.done()
    await clock.run_for(1)
    assert await waiting is False


async def test_run_for_runs_every_pass_of_a_loop() -> None:
    clock = FakeClock()
    passes: list[float] = []

    async def loop() -> None:
        while True:
            passes.append(clock.monotonic())
            await clock.sleep(1.0)

    task = asyncio.ensure_future(loop())
    await clock.run_for(10)
    task.cancel()
    assert len(passes) == 11
    assert passes[-1] - passes[0] == 10


async def test_system_clock_waits_for_real() -> None:
    clock = SystemClock()
    event = asyncio.Event()
    asyncio.get_running_loop().call_later(0.01, event.set)
    assert await wait_event(clock, event, 5) is True
    assert await wait_event(clock, asyncio.Event(), 0.01) is False
