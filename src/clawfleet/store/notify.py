"""Wake-ups: tell waiters that something changed, so nothing has to poll.

Channels are short strings (``agent:<uid>`` work is queued for an agent, ``instance:<id>`` a
command waits for a runner, ``run:<id>`` a run has new events, ``task:<id>`` a task moved,
``reconcile`` the agent controller has something to do). ``notify`` is the one way to wake:
it wakes waiters in this process and, on PostgreSQL, sends ``pg_notify`` so that a listener
connection on every other control-plane replica relays the same wake-up there.

A waiter subscribes *before* it reads the database (``subscribe`` registers synchronously), so a
change that lands between its read and its wait still wakes it; after waking it reads again. A
lost or spurious notification costs at most one timeout, never correctness. Timeouts run on the
injected clock, so long polls and controller loops can be driven in fake time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict, deque
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from clawfleet.core.clock import Clock, SystemClock

log = logging.getLogger(__name__)

PG_CHANNEL = "clawfleet"


class Subscription:
    """Wake-ups on some channels, registered when it is made; wait on it once or many times."""

    def __init__(self, notifier: Notifier, channels: Iterable[str]) -> None:
        self._notifier = notifier
        self.channels = tuple(channels)
        self._events = [notifier._event(channel) for channel in self.channels]
        for channel in self.channels:
            notifier._waiters[channel] += 1
        self._closed = False

    @property
    def woken(self) -> bool:
        return self._notifier.closing or any(event.is_set() for event in self._events)

    async def wait(self, within: float) -> bool:
        """Wait until a channel is notified (since this subscription, or since the last
        ``wait`` that returned True) or ``within`` passes; True if woken."""
        if self._notifier.closing or within <= 0:
            await asyncio.sleep(0)
            return False
        if not self.woken:
            waits = [asyncio.ensure_future(event.wait()) for event in self._events]
            try:
                await self._notifier.clock.wait(waits, within)
            finally:
                for waiter in waits:
                    waiter.cancel()
        woken = any(event.is_set() for event in self._events)
        if woken:  # re-arm on the channels' current events for the next wait
            self._release()
            self._events = [self._notifier._event(channel) for channel in self.channels]
            for channel in self.channels:
                self._notifier._waiters[channel] += 1
        return woken and not self._notifier.closing

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._release()

    def _release(self) -> None:
        for channel in self.channels:
            self._notifier._unwait(channel)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()


class Notifier:
    """In-process pub/sub of channel names; ``PostgresNotifier`` adds the other replicas."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or SystemClock()
        self._events: dict[str, asyncio.Event] = {}
        self._waiters: dict[str, int] = defaultdict(int)
        self._turns: dict[str, deque[asyncio.Future[None]]] = defaultdict(deque)
        self.closing = False

    def shutdown(self) -> None:
        """Wake every waiter now and make later waits return at once (server shutting down)."""
        self.closing = True
        for event in list(self._events.values()):
            event.set()
        for queue in self._turns.values():
            for turn in queue:
                if not turn.done():
                    turn.set_result(None)

    async def notify(self, *channels: str) -> None:
        """Wake waiters on ``channels`` here and on every other replica."""
        if channels:
            self._wake_local(channels)
            await self._send_remote(channels)

    def _wake_local(self, channels: Iterable[str]) -> None:
        """Wake every subscription on the channels, and the first ``turn`` queued on each."""
        for channel in channels:
            self._hand_off(channel)
            event = self._events.pop(channel, None)
            if event is not None:
                event.set()  # later subscribers get a fresh event and wait for the next wake

    def subscribe(self, *channels: str) -> Subscription:
        return Subscription(self, channels)

    async def wait(self, channels: list[str], within: float) -> bool:
        """Subscribe and wait once. Only for callers with nothing to re-check first; a caller
        that reads and then waits must ``subscribe`` before reading."""
        with self.subscribe(*channels) as subscription:
            return await subscription.wait(within)

    def _event(self, channel: str) -> asyncio.Event:
        event = self._events.get(channel)
        if event is None:
            event = self._events[channel] = asyncio.Event()
        return event

    def _unwait(self, channel: str) -> None:
        self._waiters[channel] -= 1
        if self._waiters[channel] <= 0:
            self._waiters.pop(channel, None)
            event = self._events.get(channel)
            if event is not None and not event.is_set():
                self._events.pop(channel, None)

    def turn(self, channel: str) -> asyncio.Future[None]:
        """Queue for one hand-off on ``channel``: each notify wakes one queued turn, so a new
        task wakes one idle runner, not all of them. Take the turn *before* checking the
        database, and ``leave`` it afterwards."""
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.closing:
            turn.set_result(None)
        self._turns[channel].append(turn)
        return turn

    def leave(self, channel: str, turn: asyncio.Future[None]) -> None:
        queue = self._turns.get(channel)
        if queue is not None:
            with contextlib.suppress(ValueError):
                queue.remove(turn)
            if not queue:
                self._turns.pop(channel, None)
        if not turn.done():
            turn.cancel()

    def _hand_off(self, channel: str) -> None:
        queue = self._turns.get(channel)
        while queue:
            turn = queue.popleft()
            if not turn.done():
                turn.set_result(None)
                return

    async def wait_turn(
        self, turn: asyncio.Future[None], subscription: Subscription, within: float
    ) -> bool:
        """Wait for ``turn`` or a wake-up of ``subscription``; True if woken before ``within``."""
        if within <= 0 or self.closing:
            await asyncio.sleep(0)
            return False
        other: asyncio.Future[bool] = asyncio.ensure_future(subscription.wait(within))
        try:
            await self.clock.wait([turn, other], within)
        finally:
            other.cancel()
        return turn.done() or (other.done() and not other.cancelled() and other.result())

    async def start(self) -> None:
        """Begin relaying notifications from other processes (no-op in-process)."""

    async def close(self) -> None:
        """Stop relaying."""

    async def _send_remote(self, channels: tuple[str, ...]) -> None:
        """Tell other processes (no-op in-process)."""


class PostgresNotifier(Notifier):
    """Adds LISTEN/NOTIFY so runners connected to another replica wake up too."""

    def __init__(self, dsn: str, clock: Clock | None = None) -> None:
        super().__init__(clock)
        self.dsn = dsn
        self._listen: Any = None
        self._send: Any = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        import asyncpg  # type: ignore[import-untyped]  # only on PostgreSQL

        self._listen = await asyncpg.connect(self.dsn)
        self._send = await asyncpg.connect(self.dsn)
        await self._listen.add_listener(PG_CHANNEL, self._on_notify)

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self._wake_local(payload.split(" "))

    async def _send_remote(self, channels: tuple[str, ...]) -> None:
        if self._send is None:
            return
        try:
            async with self._lock:
                await self._send.execute("SELECT pg_notify($1, $2)", PG_CHANNEL, " ".join(channels))
        except Exception as exc:  # a lost notification only delays a waiter until its timeout
            log.warning("pg_notify failed: %s", type(exc).__name__)

    async def close(self) -> None:
        for conn in (self._listen, self._send):
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()
