"""Fails runs whose runner went silent or whose deadline passed, and maintains the runtimes.

Runtime upkeep (the local runtime rotates instance logs) goes through ``Runtime.maintain``, so
this controller knows no backend in particular.
"""

from __future__ import annotations

from collections.abc import Mapping

from clawfleet.controllers.base import Controller
from clawfleet.core.clock import Clock
from clawfleet.runtimes.base import Runtime
from clawfleet.services.dispatch import Dispatcher
from clawfleet.store.db import Database
from clawfleet.store.notify import Notifier

MAINTAIN_EVERY = 30.0  # seconds between runtime upkeep


class RunReaper(Controller):
    name = "run-reaper"
    interval = 1.0

    def __init__(
        self,
        db: Database,
        clock: Clock,
        notifier: Notifier,
        dispatcher: Dispatcher,
        runtimes: Mapping[str, Runtime],
    ) -> None:
        super().__init__(db, clock, notifier)
        self.dispatcher = dispatcher
        self.runtimes = runtimes
        self._maintain_at = 0.0  # monotonic time of the next upkeep

    async def reconcile_once(self) -> None:
        await self.dispatcher.reaper.reap()
        if self.clock.monotonic() >= self._maintain_at:
            self._maintain_at = self.clock.monotonic() + MAINTAIN_EVERY
            for runtime in self.runtimes.values():
                await runtime.maintain()
