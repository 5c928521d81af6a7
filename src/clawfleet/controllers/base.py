"""The controller loop: interval or wake-up, a leader lease, and the two error classes.

``reconcile_once`` must be idempotent. A ``TemporaryError`` retries after its delay; anything
else is logged and retried at the next interval, so one bad object cannot stop the loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid

from clawfleet.core.clock import Clock
from clawfleet.core.errors import TemporaryError
from clawfleet.store.db import Database
from clawfleet.store.notify import Notifier
from clawfleet.store.repositories.leases import LeaseRepository

log = logging.getLogger(__name__)

HOLDER = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Controller:
    name = "controller"
    interval = 1.0
    lease_ttl = 15.0
    wake_channels: tuple[str, ...] = ()

    def __init__(self, db: Database, clock: Clock, notifier: Notifier) -> None:
        self.db = db
        self.clock = clock
        self.notifier = notifier
        self.passes = 0
        self._leader_until = 0.0  # monotonic time before which we need not renew

    async def reconcile_once(self) -> None:
        raise NotImplementedError

    async def is_leader(self) -> bool:
        """Hold the lease; renewed once a third of its TTL has passed, not on every pass."""
        if self.clock.monotonic() < self._leader_until:
            return True
        async with self.db.write() as conn:
            held = await LeaseRepository(conn).acquire(
                self.name, HOLDER, self.clock.now(), self.lease_ttl
            )
        self._leader_until = self.clock.monotonic() + self.lease_ttl / 3 if held else 0.0
        return held

    async def run(self, stopping: asyncio.Event) -> None:
        # Stop as soon as the server shuts down: with SQLite inline, a pass never suspends, so
        # a loop whose waits return at once (notifier closing) would starve the event loop.
        # Subscribed for the whole loop, so a wake-up during a pass starts the next one at once.
        with self.notifier.subscribe(*self.wake_channels) as woken:
            while not stopping.is_set() and not self.notifier.closing:
                delay = self.interval
                try:
                    if await self.is_leader():
                        await self.reconcile_once()
                        self.passes += 1
                except TemporaryError as exc:
                    log.warning("%s: %s (retrying in %.1fs)", self.name, exc.message, exc.delay)
                    delay = exc.delay
                except Exception:
                    log.exception("%s: reconcile failed", self.name)
                stop = asyncio.ensure_future(stopping.wait())
                wake = asyncio.ensure_future(woken.wait(delay))
                try:
                    await self.clock.wait([stop, wake], delay)
                finally:
                    stop.cancel()
                    wake.cancel()
