"""An injectable clock that tells time *and* waits, so loops and timeouts run in fake time.

Everything that sleeps, waits with a timeout or computes a deadline takes a ``Clock``: the
controller loops, the notifier's waits, the long polls, the runner's heartbeats and token expiry.
``SystemClock`` is the real one; ``clawfleet.testing.FakeClock`` moves only when a test tells it
to, and wakes the sleepers whose time has come.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any, Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Wall-clock time, timezone-aware UTC."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin; never goes backwards."""

    async def sleep(self, seconds: float) -> None:
        """Suspend for ``seconds`` of this clock's time (at least one pass of the event loop)."""

    async def wait(self, futures: Collection[asyncio.Future[Any]], within: float) -> bool:
        """Wait until one of ``futures`` is done or ``within`` seconds pass; True if one is.

        The futures are neither cancelled nor consumed: the caller owns them. A ``within`` of
        zero or less still yields to the event loop once."""


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    async def wait(self, futures: Collection[asyncio.Future[Any]], within: float) -> bool:
        if any(future.done() for future in futures):
            await asyncio.sleep(0)
            return True
        if within <= 0 or not futures:
            await asyncio.sleep(max(0.0, within))
            return False
        done, _ = await asyncio.wait(futures, timeout=within, return_when=asyncio.FIRST_COMPLETED)
        return bool(done)


async def wait_event(clock: Clock, event: asyncio.Event, within: float) -> bool:
    """Wait for ``event`` on ``clock`` for up to ``within`` seconds; True if it was set."""
    if event.is_set():
        return True
    waiter = asyncio.ensure_future(event.wait())
    try:
        return await clock.wait([waiter], within)
    finally:
        waiter.cancel()
