"""Dispatch semantics on SQLite and PostgreSQL, through the services (no processes)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from clawfleet.core.errors import Forbidden, InvalidInput, NotFound
from clawfleet.domain.kinds import AGENT
from clawfleet.domain.lifecycle import InstancePhase
from clawfleet.schemas.agents import AgentIn
from clawfleet.schemas.runner import CompleteIn, EventIn
from clawfleet.schemas.tasks import TaskIn
from clawfleet.server import SYSTEM, ControlPlane
from clawfleet.services.context import Principal
from clawfleet.services.dispatch import Dispatcher
from clawfleet.services.instances import InstanceService
from clawfleet.services.runner_protocol import check_runner
from clawfleet.services.runs import RunService
from clawfleet.services.tasks import TaskService
from clawfleet.testing.clock import FakeClock
from tests.factories import agent


def outcome(status: str, kind: str) -> CompleteIn:
    return CompleteIn.model_validate({"status": status, "failureKind": kind, "error": "boom"})


class World:
    def __init__(self, plane: ControlPlane) -> None:
        state = plane.app.state.api
        self.resources = state.resources
        self.agents = state.agents
        self.tasks: TaskService = state.tasks
        self.runs: RunService = state.runs
        self.dispatcher: Dispatcher = state.dispatcher
        self.instances: InstanceService = state.instances

    async def agent(self, name: str, **spec: Any) -> Any:
        await self.resources.apply(SYSTEM, AgentIn.model_validate(agent(name, **spec)))
        return next(a for a in await self.agents.all_agents() if a.key.name == name)

    async def instance(self, record: Any) -> str:
        row = await self.instances.create(record, "local")
        await self.instances.transition(row, InstancePhase.STARTING)
        await self.dispatcher.protocol.register(row.id)
        return str(row.id)

    async def submit(self, prompt: str, agent_name: str = "a", **spec: Any) -> str:
        body = TaskIn.model_validate({"spec": {"agent": agent_name, "prompt": prompt, **spec}})
        view, _ = await self.tasks.submit(SYSTEM, body)
        return view.metadata.name

    async def task(self, name: str) -> dict[str, Any]:
        return (await self.tasks.get(SYSTEM, name)).model_dump(mode="json")


@pytest.fixture
async def world(plane: ControlPlane) -> World:
    return World(plane)


async def test_priority_then_fifo(world: World) -> None:
    inst = await world.instance(await world.agent("a"))
    for prompt, priority in [("low-1", 0), ("high", 5), ("low-2", 0), ("low-3", 0)]:
        await world.submit(prompt, priority=priority)
    claimed = await world.dispatcher.claims.claim(inst, 10, 0)
    assert [c["prompt"] for c in claimed] == ["high", "low-1", "low-2", "low-3"]
    assert await world.dispatcher.claims.claim(inst, 10, 0) == []


async def test_concurrent_claimers_never_share_a_task(world: World) -> None:
    record = await world.agent("a")
    instances = [await world.instance(record) for _ in range(4)]
    for i in range(60):
        await world.submit(f"t{i}")

    async def drain(inst: str) -> list[str]:
        got: list[str] = []
        while batch := await world.dispatcher.claims.claim(inst, 3, 0):
            got += [c["taskId"] for c in batch]
        return got

    results = await asyncio.gather(*(drain(i) for i in instances))
    everything = [t for batch in results for t in batch]
    assert len(everything) == 60
    assert len(set(everything)) == 60


async def test_long_poll_is_answered_by_a_submit(world: World) -> None:
    inst = await world.instance(await world.agent("a"))
    waiting = asyncio.create_task(world.dispatcher.claims.claim(inst, 1, 10))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await world.submit("wake up")
    claimed = await asyncio.wait_for(waiting, 2)
    assert [c["prompt"] for c in claimed] == ["wake up"]


async def test_tasks_go_only_to_their_agent(world: World) -> None:
    a = await world.instance(await world.agent("a"))
    b = await world.instance(await world.agent("b"))
    await world.submit("for b", agent_name="b")
    assert await world.dispatcher.claims.claim(a, 5, 0) == []
    assert [c["prompt"] for c in await world.dispatcher.claims.claim(b, 5, 0)] == ["for b"]


async def test_selector_targets_any_matching_agent(world: World) -> None:
    await world.agent("a", labels={"role": "review"})
    b = await world.instance(await world.agent("b", labels={"role": "review"}))
    body = TaskIn.model_validate({"spec": {"selector": "role=review", "prompt": "any"}})
    await world.tasks.submit(SYSTEM, body)
    assert [c["prompt"] for c in await world.dispatcher.claims.claim(b, 1, 0)] == ["any"]
    with pytest.raises(InvalidInput, match="matches selector 'role=x'"):
        await world.tasks.submit(
            SYSTEM, TaskIn.model_validate({"spec": {"selector": "role=x", "prompt": "x"}})
        )


async def test_events_are_ordered_and_retries_are_idempotent(world: World) -> None:
    inst = await world.instance(await world.agent("a"))
    name = await world.submit("x")
    run = (await world.dispatcher.claims.claim(inst, 1, 0))[0]["id"]
    batch = [
        EventIn(seq=1, type="message", data={"text": "a"}),
        EventIn(seq=2, type="log", data={}),
    ]
    await world.dispatcher.outcomes.post_events(inst, run, batch)
    await world.dispatcher.outcomes.post_events(inst, run, batch)  # the runner retried: nothing new
    await world.dispatcher.outcomes.post_events(
        inst, run, [*batch, EventIn(seq=3, type="message", data={"text": "b"})]
    )
    _, events = await world.runs.events(SYSTEM, run)
    assert [e.seq for e in events] == [1, 2, 3, 4]
    assert [e.type for e in events] == ["status", "message", "log", "message"]
    assert (await world.task(name))["status"]["state"] == "working"


async def test_result_is_recorded_once(world: World) -> None:
    inst = await world.instance(await world.agent("a"))
    name = await world.submit("x")
    run = (await world.dispatcher.claims.claim(inst, 1, 0))[0]["id"]
    first = await world.dispatcher.outcomes.complete(
        inst, run, CompleteIn.model_validate({"status": "succeeded", "output": "one"})
    )
    again = await world.dispatcher.outcomes.complete(inst, run, outcome("failed", "agent-exited"))
    assert first == {"state": "succeeded", "recorded": True}
    assert again == {"state": "succeeded", "recorded": False}
    task = await world.task(name)
    assert task["status"]["state"] == "done"
    assert task["status"]["result"] == {"output": "one"}


async def test_retryable_failure_is_retried_after_backoff(world: World, clock: FakeClock) -> None:
    inst = await world.instance(await world.agent("a"))
    name = await world.submit("x", retry={"maxAttempts": 2, "backoff": "10s"})
    run = (await world.dispatcher.claims.claim(inst, 1, 0))[0]["id"]
    await world.dispatcher.outcomes.complete(inst, run, outcome("failed", "agent-exited"))
    assert (await world.task(name))["status"]["state"] == "pending"
    assert await world.dispatcher.claims.claim(inst, 1, 0) == []  # backing off
    clock.advance(10)
    retry = await world.dispatcher.claims.claim(inst, 1, 0)
    assert retry and retry[0]["attempt"] == 2
    await world.dispatcher.outcomes.complete(
        inst, retry[0]["id"], outcome("failed", "agent-exited")
    )
    task = await world.task(name)
    assert task["status"]["state"] == "failed"
    assert task["status"]["failureKind"] == "agent-exited"
    assert task["status"]["attempts"] == 2


async def test_agent_reported_failure_is_not_retried(world: World) -> None:
    inst = await world.instance(await world.agent("a"))
    name = await world.submit("x", retry={"maxAttempts": 3})
    run = (await world.dispatcher.claims.claim(inst, 1, 0))[0]["id"]
    await world.dispatcher.outcomes.complete(inst, run, outcome("failed", "agent-error"))
    assert (await world.task(name))["status"]["state"] == "failed"


async def test_expired_lease_fails_the_run_and_requeues(world: World, clock: FakeClock) -> None:
    record = await world.agent("a")
    dead, alive = await world.instance(record), await world.instance(record)
    name = await world.submit("x", retry={"maxAttempts": 3, "backoff": "1s"})
    run = (await world.dispatcher.claims.claim(dead, 1, 0))[0]["id"]
    clock.advance(world.dispatcher.config.lease_seconds + 1)
    await world.dispatcher.reaper.reap()
    lost = await world.runs.run(SYSTEM, run)
    assert (lost.state.value, lost.failure_kind) == ("failed", "runner-lost")
    clock.advance(2)
    again = await world.dispatcher.claims.claim(alive, 1, 0)
    assert again and again[0]["taskId"] == name


async def test_heartbeat_renews_leases(world: World, clock: FakeClock) -> None:
    inst = await world.instance(await world.agent("a"))
    await world.submit("x")
    run = (await world.dispatcher.claims.claim(inst, 1, 0))[0]["id"]
    for _ in range(5):
        clock.advance(world.dispatcher.config.lease_seconds - 1)
        await world.dispatcher.protocol.heartbeat(inst, "ready", [run], [])
        await world.dispatcher.reaper.reap()
    assert (await world.runs.run(SYSTEM, run)).state.value == "running"


async def test_cancel_pending_and_running(world: World) -> None:
    inst = await world.instance(await world.agent("a"))
    queued = await world.submit("queued")
    assert (await world.tasks.cancel(SYSTEM, queued)).status.state == "cancelled"
    running = await world.submit("running")
    run = (await world.dispatcher.claims.claim(inst, 1, 0))[0]["id"]
    view = await world.tasks.cancel(SYSTEM, running)
    assert view.status.cancel_requested is True
    commands = await world.dispatcher.protocol.wait_commands(inst, 0)
    assert [(c["type"], c["runId"]) for c in commands] == [("cancel", run)]
    await world.dispatcher.outcomes.complete(inst, run, outcome("failed", "cancelled"))
    assert (await world.task(running))["status"]["state"] == "cancelled"


async def test_idempotency_key_submits_once(world: World) -> None:
    await world.agent("a")
    first = await world.submit("x", idempotencyKey="k1")
    second = await world.submit("x", idempotencyKey="k1")
    assert first == second


async def test_unknown_agent_and_runner_scope(world: World) -> None:
    with pytest.raises(NotFound):
        await world.submit("x", agent_name="nobody")
    inst = await world.instance(await world.agent("a"))
    runner = Principal(name=f"instance:{inst}", role="runner")
    check_runner(runner, inst)
    with pytest.raises(Forbidden):
        check_runner(runner, "another-instance")
    assert AGENT.plural == "agents"


async def test_events_sent_with_the_result_are_stored_once(world: World) -> None:
    inst = await world.instance(await world.agent("a"))
    await world.submit("x")
    run = (await world.dispatcher.claims.claim(inst, 1, 0))[0]["id"]
    body = CompleteIn.model_validate(
        {"status": "succeeded", "output": "ok",
         "events": [{"seq": 1, "type": "message", "data": {"text": "hi"}},
                    {"seq": 2, "type": "result", "data": {"status": "succeeded"}}]}
    )  # fmt: skip
    await world.dispatcher.outcomes.complete(inst, run, body)
    await world.dispatcher.outcomes.complete(inst, run, body)  # a retried completion
    _, events = await world.runs.events(SYSTEM, run)
    assert [e.type for e in events] == ["status", "message", "result", "status"]


async def test_runs_of_a_dead_runner_are_retried_on_every_waiting_instance(
    world: World, clock: FakeClock
) -> None:
    """Three runs lost at once wake three idle runners, not one (each gets one retry)."""
    record = await world.agent("a")
    dead = await world.instance(record)
    for i in range(3):
        await world.submit(f"t{i}")
    assert len(await world.dispatcher.claims.claim(dead, 3, 0)) == 3
    idle = [await world.instance(record) for _ in range(3)]
    waiting = [asyncio.create_task(world.dispatcher.claims.claim(i, 1, 30)) for i in idle]
    try:
        await clock.settle()
        assert not any(w.done() for w in waiting)
        assert await world.dispatcher.outcomes.fail_instance_runs(dead, "the runner is gone") == 3
        took = await clock.run_until(lambda: all(w.done() for w in waiting))
        assert took < 1  # a lost runner's runs are retried at once, not after a long poll
    finally:
        for w in waiting:
            w.cancel()
    retried = [run for w in waiting for run in w.result()]
    assert sorted(run["prompt"] for run in retried) == ["t0", "t1", "t2"]
    assert {run["attempt"] for run in retried} == {2}
