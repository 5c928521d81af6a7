"""Dispatch, assembled: the runner protocol, claims, run outcomes and the reaper.

Each part lives in its own module (``runner_protocol``, ``claims``, ``run_outcomes``,
``reaper``); this one builds them over one database, clock and notifier, and answers the agent
controller's one question about load.
"""

from __future__ import annotations

from clawfleet.core.clock import Clock
from clawfleet.services.claims import Claims
from clawfleet.services.dispatch_config import DispatchConfig
from clawfleet.services.reaper import Reaper
from clawfleet.services.run_outcomes import RunOutcomes
from clawfleet.services.runner_protocol import RunnerProtocol
from clawfleet.store.db import Database
from clawfleet.store.notify import Notifier
from clawfleet.store.repositories.runs import RunRepository
from clawfleet.store.repositories.tasks import QueueRepository

__all__ = ["DispatchConfig", "Dispatcher"]


class Dispatcher:
    def __init__(
        self, db: Database, clock: Clock, notifier: Notifier, config: DispatchConfig | None = None
    ) -> None:
        self.db = db
        self.config = config or DispatchConfig()
        self.outcomes = RunOutcomes(db, clock, notifier)
        self.claims = Claims(db, clock, notifier, self.config)
        self.protocol = RunnerProtocol(db, clock, notifier, self.outcomes, self.config)
        self.reaper = Reaper(db, clock, notifier, self.outcomes, self.config)

    async def load(self) -> tuple[dict[str, int], dict[str, int]]:
        """(queued tasks per agent uid, running runs per instance id)."""
        async with self.db.read() as conn:
            queued = await QueueRepository(conn, skip_locked=False).pending_by_agent()
            running = await RunRepository(conn).running_by_instance()
        return queued, running
