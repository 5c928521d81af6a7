"""What an Agent adds to the generic flow: who may hand it secrets, and what deleting it takes.

Admission applies the secret-use rule (``services/secret_use.py``) to its ``secretEnv``.

Deleting it takes the tasks that were waiting for it alone. A task queued for one agent (or a
selector whose every match is gone) would otherwise wait for ever, and ``run --wait`` with it.
Such tasks fail when their last candidate is deleted, in the delete's own transaction; a task
already running is left to its run, which fails (and retries elsewhere, if anywhere) when the
controller stops the agent's instances.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from clawfleet.core.clock import Clock
from clawfleet.domain.lifecycle import on_no_candidates
from clawfleet.domain.resources import ResourceRecord
from clawfleet.services.context import RequestContext
from clawfleet.services.resource_hooks import Desired, KindHooks
from clawfleet.services.secret_use import check_secret_use
from clawfleet.store.repositories.tasks import QueueRepository, TaskRepository


class AgentHooks(KindHooks):
    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    async def admit(
        self,
        conn: AsyncConnection,
        ctx: RequestContext,
        current: ResourceRecord | None,
        desired: Desired,
    ) -> None:
        await check_secret_use(conn, ctx, current, desired)

    async def deleting(self, conn: AsyncConnection, record: ResourceRecord) -> dict[str, Any]:
        queue = QueueRepository(conn, skip_locked=False)
        tasks = TaskRepository(conn)
        now = self.clock.now()
        error = f"{record.key.describe()} was deleted before the task ran"
        failed = []
        for task in await tasks.get_many(await queue.remove_agent(record.uid)):
            if (target := on_no_candidates(task.state)) is None:
                continue
            values = {"error": error, "finished_at": now, "updated_at": now}
            if await tasks.move(task.id, task.state, target, values):
                failed.append(task.name)
        return {"failedTasks": failed} if failed else {}
