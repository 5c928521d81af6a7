"""Concurrent writers on both databases: one winner per create, no lost updates."""

from __future__ import annotations

import asyncio

from clawfleet.core.errors import AlreadyExists, Conflict
from clawfleet.domain.kinds import AGENT
from clawfleet.schemas.agents import AgentIn
from clawfleet.server import SYSTEM, ControlPlane
from clawfleet.services.resources import ResourceService
from tests.factories import agent


def service(plane: ControlPlane) -> ResourceService:
    return plane.app.state.api.resources  # type: ignore[no-any-return]


async def test_concurrent_creates_of_one_name_have_one_winner(plane: ControlPlane) -> None:
    resources = service(plane)
    doc = AgentIn.model_validate(agent("race"))
    results = await asyncio.gather(
        *(resources.create(SYSTEM, doc) for _ in range(8)), return_exceptions=True
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(r, AlreadyExists) for r in results if isinstance(r, BaseException))


async def test_concurrent_updates_lose_nothing(plane: ControlPlane) -> None:
    resources = service(plane)
    await resources.create(SYSTEM, AgentIn.model_validate(agent("counter", replicas=0)))
    applied = 0

    async def bump(replicas: int) -> None:
        nonlocal applied
        current = await resources.get(SYSTEM, AGENT, "counter")
        doc = agent("counter", replicas=replicas)
        doc["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        try:
            await resources.update(SYSTEM, AgentIn.model_validate(doc), "counter")
            applied += 1
        except Conflict:
            pass

    await asyncio.gather(*(bump(i) for i in range(1, 21)))
    final = await resources.get(SYSTEM, AGENT, "counter")
    # every successful update bumped the version exactly once; refused ones changed nothing
    assert int(final["metadata"]["resourceVersion"]) == 1 + applied
    assert final["metadata"]["generation"] == 1 + applied
    assert applied >= 1
