"""The run reaper: fails runs whose lease ran out (``runner-lost``) or whose deadline passed.

A run past its deadline first gets a ``cancel`` command (the runner stops the attempt and
reports it); only when it is still running ``deadline_grace_seconds`` later does the reaper fail
it as ``timeout`` itself. After a control-plane restart, every lease gets one more period so
runners can reconnect before their runs count as lost.
"""

from __future__ import annotations

from datetime import timedelta

from clawfleet.core.clock import Clock
from clawfleet.domain.lifecycle import FailureKind
from clawfleet.services.dispatch_config import DispatchConfig
from clawfleet.services.run_outcomes import Ended, RunOutcomes
from clawfleet.store.db import Database
from clawfleet.store.notify import Notifier
from clawfleet.store.repositories.runs import RunRepository


class Reaper:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        notifier: Notifier,
        outcomes: RunOutcomes,
        config: DispatchConfig,
    ) -> None:
        self.db = db
        self.clock = clock
        self.notifier = notifier
        self.outcomes = outcomes
        self.config = config

    async def reap(self) -> dict[str, int]:
        """Fail runs whose lease expired or whose deadline passed long ago; cancel overdue runs."""
        now = self.clock.now()
        ended = Ended()
        cancels: list[str] = []
        async with self.db.write() as conn:
            runs = RunRepository(conn)
            expired = await runs.expired(now)
            await self.outcomes.fail_lost(
                conn, expired, "the runner stopped renewing its lease", ended
            )
            grace = timedelta(seconds=self.config.deadline_grace_seconds)
            for run in await runs.overdue(now):
                if run.deadline_at is not None and run.deadline_at + grace < now:
                    await self.outcomes.fail(
                        conn, run, FailureKind.TIMEOUT, "the run exceeded its timeout", now, ended
                    )
                else:
                    pending = await runs.pending_commands(run.instance_id)
                    if not any(c.run_id == run.id and c.type == "cancel" for c in pending):
                        await runs.add_command(
                            run.instance_id, run.id, "cancel", {"reason": "timeout"}, now
                        )
                        cancels.append(run.instance_id)
        await self.notifier.notify(*ended.channels(), *(f"instance:{i}" for i in cancels))
        return {"lost": len(ended.runs)}

    async def extend_leases(self) -> int:
        """After a control-plane restart, give runners one lease period to reconnect."""
        until = self.clock.now() + timedelta(seconds=self.config.lease_seconds)
        async with self.db.write() as conn:
            return await RunRepository(conn).extend_all_leases(until)
