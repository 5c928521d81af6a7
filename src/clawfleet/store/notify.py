"""Wake-ups: tell waiters that something changed, so nothing has to poll.

Channels are short strings (``agent:<uid>`` work is queued for an agent, ``instance:<id>`` a
command waits for a runner, ``run:<id>`` a run has new events). On SQLite everything happens in
one process, so an in-process notifier suffices. On PostgreSQL, several API replicas may serve
runners: ``publish`` also sends ``pg_notify`` and a listener connection relays notifications from
other replicas. A waiter always re-checks the database after waking; a lost or spurious
notification costs at most one timeout, never correctness.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict, deque
from typing import Any

log = logging.getLogger(__name__)

PG_CHANNEL = "clawfleet"


class Notifier:
    """In-process pub/sub of channel names with a generation counter per channel."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = defaultdict(asyncio.Event)
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

    def publish(self, *channels: str) -> None:
        """Wake every ``wait`` on the channels, and the first ``turn`` queued on each."""
        for channel in channels:
            self._hand_off(channel)
            event = self._events.get(channel)
            if event is not None:
                event.set()
                # Replace the event so later waiters block until the next publish.
                self._events[channel] = asyncio.Event()

    async def wait(self, channels: list[str], timeout: float) -> bool:  # noqa: ASYNC109
        """Wait until any channel is published or ``timeout`` passes; True if woken.

        Always yields to the event loop at least once, so no caller can spin without letting
        others run (SQLite work runs inline and never suspends)."""
        if timeout <= 0 or self.closing:
            await asyncio.sleep(0)
            return False
        events = [self._events[channel] for channel in channels]
        for channel in channels:
            self._waiters[channel] += 1
        waits = [asyncio.ensure_future(event.wait()) for event in events]
        try:
            done, _ = await asyncio.wait(
                waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            return bool(done)
        finally:
            for waiter in waits:
                waiter.cancel()
            for channel in channels:
                self._waiters[channel] -= 1
                if self._waiters[channel] <= 0:
                    self._waiters.pop(channel, None)
                    event = self._events.get(channel)
                    if event is not None and not event.is_set():
                        self._events.pop(channel, None)

    def turn(self, channel: str) -> asyncio.Future[None]:
        """Queue for one hand-off on ``channel``: each publish wakes one queued turn, so a new
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
        self,
        turn: asyncio.Future[None],
        channels: list[str],
        timeout: float,  # noqa: ASYNC109
    ) -> bool:
        """Wait for ``turn`` or a publish on ``channels``; True if woken before ``timeout``."""
        if timeout <= 0 or self.closing:
            await asyncio.sleep(0)
            return False
        other: asyncio.Future[bool] = asyncio.ensure_future(self.wait(channels, timeout))
        waits: list[asyncio.Future[Any]] = [turn, other]
        try:
            done, _ = await asyncio.wait(
                waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            other.cancel()
        return bool(done)

    async def start(self) -> None:
        """Begin relaying notifications from other processes (no-op in-process)."""

    async def close(self) -> None:
        """Stop relaying."""

    async def send_remote(self, channels: list[str]) -> None:
        """Tell other processes (no-op in-process)."""


class PostgresNotifier(Notifier):
    """Adds LISTEN/NOTIFY so runners connected to another replica wake up too."""

    def __init__(self, dsn: str) -> None:
        super().__init__()
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
        super().publish(*payload.split(" "))

    async def send_remote(self, channels: list[str]) -> None:
        if self._send is None or not channels:
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
