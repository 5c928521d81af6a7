"""The controller loop: interval or wake-up, a leader lease, and the error rule (DESIGN.md §4).

``reconcile_once`` must be idempotent. It runs every ``interval`` seconds of the injected clock,
or at once when one of ``wake_channels`` is notified, and only while this process holds the
controller's lease.

The error rule is the base class's, so every controller applies it alike: a controller hands
each object to ``reconcile_each``, where a ``TemporaryError`` retries that object after the
error's delay, and a ``PermanentError`` marks it failed (``mark_failed``) and leaves it alone
until its spec changes (a new generation). Any other error is logged and retried at the next
pass; one bad object never stops the others, nor the loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Iterable

from clawfleet.core.clock import Clock
from clawfleet.core.errors import ClawfleetError, PermanentError, TemporaryError
from clawfleet.domain.resources import ResourceRecord
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
        self._retry_at: dict[str, float] = {}  # uid -> monotonic time of its next try
        self._failed: dict[str, int] = {}  # uid -> the generation that failed permanently

    async def reconcile_once(self) -> None:
        raise NotImplementedError

    async def mark_failed(self, record: ResourceRecord, message: str) -> None:
        """Record that ``record`` cannot be reconciled as declared (its status says why).
        Controllers that hand objects to ``reconcile_each`` implement it."""
        raise NotImplementedError

    async def reconcile_each(
        self,
        records: Iterable[ResourceRecord],
        reconcile: Callable[[ResourceRecord], Awaitable[None]],
    ) -> None:
        """``reconcile`` every record on its own, under the error rule (module docstring)."""
        now = self.clock.monotonic()
        seen: set[str] = set()
        for record in records:
            seen.add(record.uid)
            if self._retry_at.get(record.uid, now) > now:
                continue
            if self._failed.get(record.uid) == record.generation:
                continue
            what = record.key.describe()
            try:
                await reconcile(record)
            except TemporaryError as exc:
                log.warning("%s: %s (retrying in %gs)", what, exc.message, exc.delay)
                self._retry_at[record.uid] = now + exc.delay
                continue
            except PermanentError as exc:
                log.warning("%s failed: %s", what, exc.message)
                await self._mark_failed(record, exc.message)
                continue
            except ClawfleetError as exc:
                log.warning("%s: %s", what, exc.message)
            except Exception:
                log.exception("%s: reconcile failed", what)
            self._retry_at.pop(record.uid, None)
            self._failed.pop(record.uid, None)
        for uid in set(self._retry_at) - seen:
            del self._retry_at[uid]
        for uid in set(self._failed) - seen:
            del self._failed[uid]

    async def _mark_failed(self, record: ResourceRecord, message: str) -> None:
        try:
            await self.mark_failed(record, message)
        except ClawfleetError as exc:  # e.g. the database is away: try again next pass
            log.warning("%s: cannot mark it failed: %s", record.key.describe(), exc.message)
            return
        self._failed[record.uid] = record.generation

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
