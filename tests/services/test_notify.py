"""Wake-ups: in-process, and across control-plane replicas through PostgreSQL LISTEN/NOTIFY."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from clawfleet.domain.lifecycle import InstancePhase, StopRequest
from clawfleet.schemas.agents import AgentIn
from clawfleet.schemas.tasks import TaskIn
from clawfleet.server import SYSTEM, ControlPlane
from clawfleet.services.dispatch import Dispatcher
from clawfleet.services.instances import InstanceService
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


@contextlib.asynccontextmanager
async def two_replicas(
    dsn: str, clock: FakeClock
) -> AsyncIterator[list[tuple[Database, Notifier]]]:
    """Two control-plane replicas on one PostgreSQL database, each with its own notifier."""
    replicas = []
    try:
        for _ in range(2):
            db = Database("postgresql+asyncpg://" + dsn.split("://", 1)[1])
            notifier = PostgresNotifier(dsn, clock)
            await notifier.start()
            replicas.append((db, notifier))
        yield replicas
    finally:
        for db, notifier in replicas:
            await notifier.close()
            await db.close()


async def until(predicate: Callable[[], bool], what: str) -> None:
    """Real time, bounded: the fake clock never moves here, so only a NOTIFY can wake."""
    for _ in range(500):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def _waiting_instance(plane: ControlPlane) -> tuple[Any, str]:
    state = plane.app.state.api
    await state.resources.apply(SYSTEM, AgentIn.model_validate(agent("a")))
    record = (await state.agents.all_agents())[0]
    row = await state.instances.create(record, "local")
    await state.instances.transition(row, InstancePhase.STARTING)
    return state, str(row.id)


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_a_submit_on_one_replica_wakes_a_claim_on_another(
    plane: ControlPlane, db_url: str
) -> None:
    _, instance = await _waiting_instance(plane)
    clock = FakeClock()
    async with two_replicas(db_url, clock) as [(db_a, notify_a), (db_b, notify_b)]:
        claimer = Dispatcher(db_a, clock, notify_a)
        await claimer.protocol.register(instance)
        waiting = asyncio.create_task(claimer.claims.claim(instance, 1, 20))
        await until(lambda: clock.sleepers > 0, "the claim to wait")
        body = TaskIn.model_validate({"spec": {"agent": "a", "prompt": "hi"}})
        await TaskService(db_b, clock, notify_b).submit(SYSTEM, body)
        claimed = await asyncio.wait_for(waiting, 5)  # fake time stands still: NOTIFY woke it
        assert [c["prompt"] for c in claimed] == ["hi"]


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_wake_ups_that_were_local_reach_the_other_replica(
    plane: ControlPlane, db_url: str
) -> None:
    """An instance restart request and a timeout's cancel command, made on replica B, wake the
    controller and the runner's command poll on replica A (they were published in-process)."""
    state, instance = await _waiting_instance(plane)
    clock = FakeClock()
    async with two_replicas(db_url, clock) as [(db_a, notify_a), (db_b, notify_b)]:
        dispatch_b = Dispatcher(db_b, clock, notify_b)
        await dispatch_b.protocol.register(instance)
        body = {"spec": {"agent": "a", "prompt": "slow", "timeout": "1s"}}
        await TaskService(db_b, clock, notify_b).submit(SYSTEM, TaskIn.model_validate(body))
        assert await dispatch_b.claims.claim(instance, 1, 0)
        commands = asyncio.create_task(
            Dispatcher(db_a, clock, notify_a).protocol.wait_commands(instance, 30)
        )
        await until(lambda: clock.sleepers > 0, "the command poll to wait")
        clock.advance(2)  # past the deadline (the poll's own 30 s are far away)
        await dispatch_b.reaper.reap()
        assert [c["type"] for c in await asyncio.wait_for(commands, 5)] == ["cancel"]
        with notify_a.subscribe("reconcile") as reconcile:
            waiting = asyncio.create_task(reconcile.wait(30))
            name = (await state.instances.all())[0].name
            await InstanceService(db_b, clock, notify_b).request(SYSTEM, name, StopRequest.RESTART)
            assert await asyncio.wait_for(waiting, 5) is True


def test_only_the_notifier_wakes_waiters_in_process() -> None:
    """One notify() wakes local and remote waiters; nothing else may wake only this process."""
    import clawfleet

    root = Path(clawfleet.__file__).parent
    local_only = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if "_wake_local" in path.read_text() and path.name != "notify.py"
    ]
    assert local_only == []
