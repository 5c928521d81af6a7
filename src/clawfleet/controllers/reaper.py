"""Fails runs whose runner went silent or whose deadline passed, and rotates instance logs."""

from __future__ import annotations

from clawfleet.controllers.base import Controller
from clawfleet.core.clock import Clock
from clawfleet.runtimes.local import LocalRuntime
from clawfleet.services.dispatch import Dispatcher
from clawfleet.store.db import Database
from clawfleet.store.notify import Notifier


class RunReaper(Controller):
    name = "run-reaper"
    interval = 1.0

    def __init__(
        self,
        db: Database,
        clock: Clock,
        notifier: Notifier,
        dispatcher: Dispatcher,
        local: LocalRuntime | None = None,
    ) -> None:
        super().__init__(db, clock, notifier)
        self.dispatcher = dispatcher
        self.local = local

    async def reconcile_once(self) -> None:
        await self.dispatcher.reaper.reap()
        if self.local is not None and self.passes % 30 == 0:
            await self.local.rotate_logs()
