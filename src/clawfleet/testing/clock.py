"""A clock that moves only when told to, and wakes the sleepers whose time has come.

``advance`` moves time at once and wakes every sleeper that is due; ``run_for`` moves time in
steps, from one due sleeper to the next, letting the event loop run in between, so a loop that
sleeps ``interval`` seconds makes one pass per interval in fake time (kopf's looptime, without
a custom event loop). ``sleepers`` tells a test that something really is waiting.

Code under test that does real I/O (a PostgreSQL query) is not done after ``settle``: drive it
with ``run_until``, which moves fake time in small steps and lets real I/O finish in between.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta
from typing import Any

# Passes of the event loop that `settle` grants: enough for a chain of wake-ups (a woken task
# publishes, which wakes another...) that involves no real I/O.
SETTLE_PASSES = 50


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._mono = 1000.0
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    @property
    def sleepers(self) -> int:
        """How many sleeps and timed waits are pending now."""
        return sum(1 for _, _, timer in self._timers if not timer.done())

    def next_deadline(self) -> float | None:
        """Seconds until the next pending sleeper is due, or None if nothing sleeps."""
        pending = [due for due, _, timer in self._timers if not timer.done()]
        return max(0.0, min(pending) - self._mono) if pending else None

    def _timer(self, seconds: float) -> asyncio.Future[None]:
        timer: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if seconds <= 0:
            timer.set_result(None)
        else:
            heapq.heappush(self._timers, (self._mono + seconds, next(self._order), timer))
        return timer

    async def sleep(self, seconds: float) -> None:
        timer = self._timer(seconds)
        try:
            await timer
        finally:
            timer.cancel()
        if seconds <= 0:
            await asyncio.sleep(0)

    async def wait(self, futures: Collection[asyncio.Future[Any]], within: float) -> bool:
        if any(future.done() for future in futures):
            await asyncio.sleep(0)
            return True
        timer = self._timer(within)
        try:
            await asyncio.wait([*futures, timer], return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
        if within <= 0:
            await asyncio.sleep(0)
        return any(future.done() for future in futures)

    def advance(self, seconds: float) -> None:
        """Move time forward at once and wake every sleeper that is now due."""
        self._now += timedelta(seconds=seconds)
        self._mono += seconds
        while self._timers and self._timers[0][0] <= self._mono:
            _, _, timer = heapq.heappop(self._timers)
            if not timer.done():
                timer.set_result(None)

    async def settle(self) -> None:
        """Let the event loop run what is ready (no real I/O), without moving time."""
        for _ in range(SETTLE_PASSES):
            await asyncio.sleep(0)

    async def run_for(self, seconds: float) -> None:
        """Move time forward by ``seconds`` in steps, one due sleeper at a time, settling the
        event loop after each step, so loops that sleep repeatedly run every pass on the way."""
        end = self._mono + seconds
        await self.settle()
        while True:
            step = self.next_deadline()
            if step is None or self._mono + step > end:
                break
            self.advance(step)
            await self.settle()
        self.advance(end - self._mono)
        await self.settle()

    async def run_until(
        self,
        done: Callable[[], bool],
        *,
        step: float = 0.1,
        limit: float = 300.0,
        real_timeout: float = 30.0,
    ) -> float:
        """Move fake time in ``step``s until ``done()`` holds; returns the fake seconds it took.

        Between steps the event loop runs for real (a few milliseconds), so database I/O of the
        code under test completes. Fails with ``TimeoutError`` after ``limit`` fake seconds or
        ``real_timeout`` real ones."""
        loop = asyncio.get_running_loop()
        started, real_deadline = self._mono, loop.time() + real_timeout
        while not done():
            if self._mono - started >= limit or loop.time() > real_deadline:
                raise TimeoutError(f"not done after {self._mono - started:g} fake seconds")
            await self.settle()
            await asyncio.sleep(0.002)  # real time for real I/O
            if done():
                break
            self.advance(step)
        return self._mono - started
