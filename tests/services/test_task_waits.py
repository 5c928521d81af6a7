"""The task long poll: answers at once when it can, wakes on the task's channel, times out on
the clock, and says why a pending task waits. Both databases, fake time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from clawfleet.core.errors import NotFound
from clawfleet.domain.ids import Uid
from clawfleet.domain.lifecycle import InstancePhase
from clawfleet.domain.resources import ResourceKey, ResourceRecord
from clawfleet.schemas.agents import AgentIn
from clawfleet.schemas.runner import CompleteIn
from clawfleet.schemas.tasks import TaskIn
from clawfleet.server import SYSTEM, ControlPlane
from clawfleet.services.context import Principal, RequestContext
from clawfleet.services.task_waits import TaskWait, TaskWaits, agent_reason
from clawfleet.testing.clock import FakeClock
from tests.factories import agent


class World:
    def __init__(self, plane: ControlPlane, clock: FakeClock) -> None:
        state = plane.app.state.api
        self.state = state
        self.clock = clock
        self.waits = TaskWaits(state.db, clock, state.notifier)

    async def agent(self, name: str, status: dict[str, Any] | None = None, **spec: Any) -> Any:
        await self.state.resources.apply(SYSTEM, AgentIn.model_validate(agent(name, **spec)))
        record = next(a for a in await self.state.agents.all_agents() if a.key.name == name)
        if status is not None:
            await self.state.agents.set_status(record, status)
        return record

    async def instance(self, record: Any) -> str:
        row = await self.state.instances.create(record, "local")
        await self.state.instances.transition(row, InstancePhase.STARTING)
        await self.state.dispatcher.protocol.register(row.id)
        return str(row.id)

    async def submit(self, **spec: Any) -> str:
        body = TaskIn.model_validate({"spec": {"agent": "a", "prompt": "p", **spec}})
        view, _ = await self.state.tasks.submit(SYSTEM, body)
        return view.metadata.name

    def start(self, name: str, until: str, within: float = 25) -> asyncio.Task[TaskWait]:
        return asyncio.create_task(self.waits.wait(SYSTEM, name, until, within))  # type: ignore[arg-type]

    async def until_waiting(self) -> None:
        """Until the long poll sleeps on the clock (PostgreSQL reads need real I/O first)."""
        for _ in range(1000):
            if self.clock.sleepers:
                return
            await asyncio.sleep(0.005)
        raise AssertionError("the long poll never waited")


@pytest.fixture
async def world(plane: ControlPlane, clock: FakeClock) -> World:
    return World(plane, clock)


async def test_a_finished_task_is_answered_at_once(world: World) -> None:
    inst = await world.instance(await world.agent("a"))
    name = await world.submit()
    run = (await world.state.dispatcher.claims.claim(inst, 1, 0))[0]["id"]
    await world.state.dispatcher.outcomes.complete(
        inst, run, CompleteIn.model_validate({"status": "succeeded", "output": "ok"})
    )
    answer = await world.waits.wait(SYSTEM, name, "finished", 25)
    assert answer.task.status.state == "done"
    assert answer.waiting is None
    assert world.clock.sleepers == 0


async def test_a_claim_wakes_a_wait_for_the_start(world: World) -> None:
    inst = await world.instance(await world.agent("a"))
    name = await world.submit()
    waiting = world.start(name, "started")
    await world.until_waiting()
    assert not waiting.done()
    await world.state.dispatcher.claims.claim(inst, 1, 0)  # notifies task:<id>
    answer = await asyncio.wait_for(waiting, 10)
    assert answer.task.status.state == "claimed"
    assert answer.waiting is None


async def test_a_cancel_wakes_a_wait_for_the_end(world: World) -> None:
    await world.agent("a")
    name = await world.submit()
    waiting = world.start(name, "finished")
    await world.until_waiting()
    await world.state.tasks.cancel(SYSTEM, name)
    answer = await asyncio.wait_for(waiting, 10)
    assert answer.task.status.state == "cancelled"


async def test_the_wait_times_out_on_the_clock_and_says_why(world: World) -> None:
    status = {"phase": "Stopped", "replicas": 0, "readyReplicas": 0}
    await world.agent("a", status=status, state="Stopped")
    name = await world.submit()
    waiting = world.start(name, "finished", within=25)
    await world.until_waiting()
    world.clock.advance(24)
    await world.clock.settle()
    assert not waiting.done()
    world.clock.advance(1)
    answer = await asyncio.wait_for(waiting, 10)
    assert answer.task.status.state == "pending"
    assert answer.waiting is not None
    assert answer.waiting.startswith("agent 'a' has no ready instance: phase Stopped")
    assert "clawfleet agent wake a -t default -p default" in answer.waiting


async def test_a_failed_attempt_waits_for_its_backoff(world: World) -> None:
    inst = await world.instance(await world.agent("a", status={"phase": "Pending"}))
    name = await world.submit(retry={"maxAttempts": 3, "backoff": "10s"})
    run = (await world.state.dispatcher.claims.claim(inst, 1, 0))[0]["id"]
    failed = {"status": "failed", "failureKind": "agent-exited", "error": "exit 1"}
    await world.state.dispatcher.outcomes.complete(inst, run, CompleteIn.model_validate(failed))
    world.clock.advance(4)
    answer = await world.waits.wait(SYSTEM, name, "started", 0)
    assert answer.waiting == "waiting for its retry backoff (attempt 2 of 3 in 6s)"
    world.clock.advance(6)
    answer = await world.waits.wait(SYSTEM, name, "started", 0)
    assert (
        answer.waiting
        == "agent 'a' has no ready instance: phase Pending (its instances are starting)"
    )


async def test_a_selector_task_names_every_candidate(world: World) -> None:
    await world.agent("a", labels={"team": "web"}, replicas=0)
    await world.agent("b", labels={"team": "web"}, status={"phase": "Degraded", "lastError": "x"})
    body = TaskIn.model_validate({"spec": {"selector": "team=web", "prompt": "p"}})
    view, _ = await world.state.tasks.submit(SYSTEM, body)
    answer = await world.waits.wait(SYSTEM, view.metadata.name, "started", 0)
    assert answer.waiting == (
        "no matching agent can take it now: agent 'a' has no ready instance: replicas 0 "
        "(scale it up with `clawfleet agent scale a 1 -t default -p default`); "
        "agent 'b' has no ready instance: phase Degraded: x"
    )


async def test_a_task_whose_agent_is_deleted_finishes_failed_and_says_why(world: World) -> None:
    await world.agent("a")
    name = await world.submit()
    from clawfleet.domain.kinds import AGENT

    await world.state.resources.delete(RequestContext(SYSTEM.principal), AGENT, "a")
    answer = await world.waits.wait(SYSTEM, name, "finished", 0)
    assert answer.task.status.state == "failed"
    assert answer.task.status.error == (
        "agent 'a' in tenant 'default', project 'default' was deleted before the task ran"
    )
    assert answer.waiting is None


async def test_a_task_of_another_tenant_is_not_found(world: World) -> None:
    await world.agent("a")
    name = await world.submit()
    stranger = RequestContext(Principal(name="user:eve", role="user", tenant="other"))
    with pytest.raises(NotFound):
        await world.waits.wait(stranger, name, "finished", 0)
    with pytest.raises(NotFound, match="task 'nope' not found"):
        await world.waits.wait(SYSTEM, "nope", "finished", 0)


def _record(spec: dict[str, Any], status: dict[str, Any]) -> ResourceRecord:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return ResourceRecord(
        Uid("u"), ResourceKey("Agent", "acme", "web", "x"), 1, 1, {}, {},
        {"adapter": "command", "replicas": 1, **spec}, status, now, now,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("spec", "status", "reason"),
    [
        ({"state": "Stopped"}, {"phase": "Stopped"},
         "agent 'x' has no ready instance: phase Stopped "
         "(start it with `clawfleet agent wake x -t acme -p web`)"),
        ({"replicas": 0}, {"phase": "Running"},
         "agent 'x' has no ready instance: replicas 0 "
         "(scale it up with `clawfleet agent scale x 1 -t acme -p web`)"),
        ({}, {"phase": "Degraded", "lastError": "secret 'gh' not found"},
         "agent 'x' has no ready instance: phase Degraded: secret 'gh' not found"),
        ({}, {"phase": "Degraded"}, "agent 'x' has no ready instance: phase Degraded"),
        ({"state": "Sleeping"}, {"phase": "Sleeping", "asleep": True},
         "agent 'x' has no ready instance: phase Sleeping (the task wakes it)"),
        ({}, {"phase": "Pending", "readyReplicas": 0},
         "agent 'x' has no ready instance: phase Pending (its instances are starting)"),
        ({}, {"phase": "Running", "readyReplicas": 2},
         "agent 'x' has 2 ready instance(s), all busy; the task is queued"),
        ({}, {}, "agent 'x' has no ready instance yet (its controller has not reported on it)"),
    ],
)  # fmt: skip
def test_agent_reasons(spec: dict[str, Any], status: dict[str, Any], reason: str) -> None:
    assert agent_reason(_record(spec, status)) == reason
