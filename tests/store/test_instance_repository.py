"""The instance repository: phase moves are checked and compare-and-swapped on both databases."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from clawfleet.domain.instances import Instance, InstanceId
from clawfleet.domain.lifecycle import InstancePhase, InvalidTransition, StopRequest
from clawfleet.store.db import Database
from clawfleet.store.repositories.instances import InstanceRepository

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def make_instance(name: str = "a-00001", tenant: str = "t", project: str = "p") -> Instance:
    return Instance(
        id=InstanceId(f"id-{tenant}-{project}-{name}"), name=name, tenant=tenant,
        project=project, agent="a", agent_uid="uid-a", agent_generation=1,
        revision="", runtime="local", phase=InstancePhase.PENDING, liveness="starting", handle=None,
        token_id=None, restarts=0, consecutive_failures=0, backoff_until=None, last_error=None,
        stop_requested=StopRequest.NONE, heartbeat_at=None, started_at=None, stopped_at=None,
        created_at=NOW, updated_at=NOW,
    )  # fmt: skip


async def test_an_instance_reads_back_as_it_was_written(db: Database) -> None:
    instance = make_instance()
    async with db.write() as conn:
        await InstanceRepository(conn).insert(instance)
    async with db.read() as conn:
        assert await InstanceRepository(conn).get(instance.id) == instance


async def test_a_move_from_a_stale_phase_loses_and_writes_nothing(db: Database) -> None:
    instance = make_instance()
    async with db.write() as conn:
        repo = InstanceRepository(conn)
        await repo.insert(instance)
        assert await repo.move_instance(
            instance.id, InstancePhase.PENDING, InstancePhase.STARTING, {"restarts": 1}
        )
        # A second writer that read the instance as Pending too loses the race.
        assert not await repo.move_instance(
            instance.id, InstancePhase.PENDING, InstancePhase.STOPPED, {"restarts": 7}
        )
    async with db.read() as conn:
        stored = await InstanceRepository(conn).get(instance.id)
    assert stored == dataclasses.replace(instance, phase=InstancePhase.STARTING, restarts=1)


async def test_a_move_the_rules_forbid_is_refused(db: Database) -> None:
    instance = make_instance()
    async with db.write() as conn:
        repo = InstanceRepository(conn)
        await repo.insert(instance)
        with pytest.raises(InvalidTransition):
            await repo.move_instance(instance.id, InstancePhase.PENDING, InstancePhase.LOST, {})


async def test_update_refuses_the_phase_column(db: Database) -> None:
    async with db.write() as conn:
        with pytest.raises(ValueError, match="move_instance"):
            await InstanceRepository(conn).update(InstanceId("x"), {"phase": "Running"})
