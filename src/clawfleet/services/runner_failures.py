"""What a runner reports when it cannot start its agent program, recorded on its instance.

A runner whose agent program cannot start (not on the agent's PATH, not executable, a bad
config) exits, and its controller sees nothing but the exit. So the runner says why first, and
this records it where users look: the instance's ``lastError`` (which the agent's
``status.lastError`` shows) and a Warning event ``StartFailed``. It also sets the instance's
liveness to ``failed``: that tells the agent controller, when it sees the runner exit, that the
runner of this launch said why (``Instance.start_failure``), so the cause is kept rather than
replaced by "the runner exited (code 5)".
"""

from __future__ import annotations

from clawfleet.core.clock import Clock
from clawfleet.core.errors import NotFound
from clawfleet.domain.instances import FAILED_LIVENESS, InstanceId
from clawfleet.store.db import Database
from clawfleet.store.notify import Notifier
from clawfleet.store.repositories.events import ResourceEventRepository
from clawfleet.store.repositories.instances import InstanceRepository


class RunnerFailures:
    def __init__(self, db: Database, clock: Clock, notifier: Notifier) -> None:
        self.db = db
        self.clock = clock
        self.notifier = notifier

    async def record_start_failure(
        self, instance_id: InstanceId, error: str, *, permanent: bool
    ) -> None:
        """Record why the instance's agent program did not start. Idempotent: a retried report
        rewrites the same error and adds one more event. Raises NotFound for no such instance."""
        now = self.clock.now()
        async with self.db.write() as conn:
            instances = InstanceRepository(conn)
            row = await instances.get(instance_id)
            if row is None:
                raise NotFound(f"instance {instance_id!r} not found")
            await instances.update(
                instance_id, {"last_error": error, "liveness": FAILED_LIVENESS, "updated_at": now}
            )
            await ResourceEventRepository(conn).add(
                tenant=row.tenant,
                project=row.project,
                kind="Instance",
                name=row.name,
                reason="StartFailed",
                message=error if permanent else f"{error} (it may start on a retry)",
                now=now,
                warning=True,
            )
        await self.notifier.notify("reconcile")
