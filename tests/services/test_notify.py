"""Wake-ups: in-process, and across control-plane replicas through PostgreSQL LISTEN/NOTIFY."""

from __future__ import annotations

import asyncio
import time

import pytest

from clawfleet.core.clock import SystemClock
from clawfleet.domain.lifecycle import InstancePhase
from clawfleet.schemas.agents import AgentIn
from clawfleet.schemas.tasks import TaskIn
from clawfleet.server import SYSTEM, ControlPlane
from clawfleet.services.dispatch import Dispatcher
from clawfleet.services.tasks import TaskService
from clawfleet.store.db import Database
from clawfleet.store.notify import Notifier, PostgresNotifier
from clawfleet.testing.clock import FakeClock
from tests.factories import agent


async def test_wait_returns_on_notify_and_times_out_otherwise() -> None:
    clock = FakeClock()
    notifier = Notifier(clock)
    waiter = asyncio.create_task(notifier.wait(["a"], 5))
    await clock.run_for(5)
    assert await waiter is False
    waiter = asyncio.create_task(notifier.wait(["a", "b"], 5))
    await clock.settle()
    await notifier.notify("b")
    assert await waiter is True
    notifier.shutdown()
    assert await notifier.wait(["a"], 5) is False  # returns at once while shutting down


async def test_a_notify_between_subscribe_and_wait_is_not_lost() -> None:
    """The SSE stall: a completion that lands after the read but before the wait."""
    clock = FakeClock()
    notifier = Notifier(clock)
    with notifier.subscribe("run:1") as woken:
        await notifier.notify("run:1")  # lands while the subscriber is still reading
        assert await woken.wait(15) is True
        assert clock.monotonic() == 1000.0  # at once, not after the 15 s keepalive
        waiting = asyncio.create_task(woken.wait(15))  # re-armed: waits for the next one
        await clock.settle()
        assert not waiting.done()
        await notifier.notify("run:1")
        assert await waiting is True


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_a_submit_on_one_replica_wakes_a_claim_on_another(
    plane: ControlPlane, db_url: str
) -> None:
    state = plane.app.state.api
    await state.resources.apply(SYSTEM, AgentIn.model_validate(agent("a")))
    record = (await state.resources.all_of_kind("Agent"))[0]
    row = await state.instances.create(record, "local")
    await state.instances.transition(row, InstancePhase.STARTING)
    dsn = db_url  # postgresql://... for asyncpg
    replicas = []
    for _ in range(2):
        db = Database("postgresql+asyncpg://" + dsn.split("://", 1)[1])
        notifier = PostgresNotifier(dsn)
        await notifier.start()
        replicas.append((db, notifier))
    (db_a, notify_a), (db_b, notify_b) = replicas
    try:
        clock = SystemClock()
        claimer = Dispatcher(db_a, clock, notify_a)
        submitter = TaskService(db_b, clock, notify_b)
        await claimer.protocol.register(row.id)
        waiting = asyncio.create_task(claimer.claims.claim(row.id, 1, 20))
        await asyncio.sleep(0.2)
        started = time.monotonic()
        await submitter.submit(
            SYSTEM, TaskIn.model_validate({"spec": {"agent": "a", "prompt": "hi"}})
        )
        claimed = await asyncio.wait_for(waiting, 5)
        assert [c["prompt"] for c in claimed] == ["hi"]
        assert time.monotonic() - started < 2  # woken by NOTIFY, not by the 20 s timeout
    finally:
        for db, notifier in replicas:
            await notifier.close()
            await db.close()
