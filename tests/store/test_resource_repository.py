"""The resource repository on both databases: compare-and-swap and selectors in SQL."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy.exc import IntegrityError

from clawfleet.domain.ids import new_uid
from clawfleet.domain.resources import ResourceKey, ResourceRecord
from clawfleet.domain.selectors import parse_selector
from clawfleet.store.db import Database
from clawfleet.store.repositories.resources import ResourceRepository
from clawfleet.testing.clock import FakeClock


def record(name: str, labels: dict[str, str] | None = None, tenant: str = "t") -> ResourceRecord:
    now = FakeClock().now()
    return ResourceRecord(
        uid=new_uid(),
        key=ResourceKey("Agent", tenant, "p", name),
        generation=1,
        resource_version=1,
        labels=labels or {},
        annotations={},
        spec={"adapter": "command", "nested": {"list": [1, 2, {"deep": True}]}},
        status={},
        created_at=now,
        updated_at=now,
    )


async def test_round_trip_keeps_json_and_times(db: Database) -> None:
    original = record("a", {"team": "x"})
    async with db.write() as conn:
        await ResourceRepository(conn).insert(original)
    async with db.read() as conn:
        loaded = await ResourceRepository(conn).get(original.key)
    assert loaded == original
    assert loaded is not None and loaded.created_at.tzinfo is not None


async def test_compare_and_swap_refuses_a_stale_version(db: Database) -> None:
    original = record("a")
    async with db.write() as conn:
        await ResourceRepository(conn).insert(original)
    newer = replace(original, resource_version=2, spec={"v": 2})
    async with db.write() as conn:
        assert await ResourceRepository(conn).replace(newer, expected_version=1)
    lost = replace(original, resource_version=2, spec={"v": "lost"})
    async with db.write() as conn:
        assert not await ResourceRepository(conn).replace(lost, expected_version=1)
    async with db.read() as conn:
        stored = await ResourceRepository(conn).get(original.key)
    assert stored is not None and stored.spec == {"v": 2}


async def test_unique_name_per_scope(db: Database) -> None:
    async with db.write() as conn:
        await ResourceRepository(conn).insert(record("a"))
        await ResourceRepository(conn).insert(record("a", tenant="other"))
    with pytest.raises(IntegrityError):
        async with db.write() as conn:
            await ResourceRepository(conn).insert(record("a"))


async def test_failed_transaction_writes_nothing(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.write() as conn:
            await ResourceRepository(conn).insert(record("a", {"x": "1"}))
            raise RuntimeError("boom")
    async with db.read() as conn:
        repo = ResourceRepository(conn)
        assert await repo.get(ResourceKey("Agent", "t", "p", "a")) is None
        everything = await repo.list(
            "Agent", tenant=None, project=None, selector=parse_selector("x"), after=None, limit=10
        )
        assert everything == []


async def test_labels_are_replaced_on_update(db: Database) -> None:
    original = record("a", {"old": "1"})
    async with db.write() as conn:
        await ResourceRepository(conn).insert(original)
        await ResourceRepository(conn).replace(
            replace(original, resource_version=2, labels={"new": "1"}), expected_version=1
        )
    async with db.read() as conn:
        repo = ResourceRepository(conn)

        async def names(selector: str) -> list[str]:
            found = await repo.list(
                "Agent",
                tenant="t",
                project="p",
                selector=parse_selector(selector),
                after=None,
                limit=10,
            )
            return [r.key.name for r in found]

        assert await names("old") == []
        assert await names("new=1") == ["a"]


async def test_delete_removes_labels(db: Database) -> None:
    original = record("a", {"k": "v"})
    async with db.write() as conn:
        await ResourceRepository(conn).insert(original)
    async with db.write() as conn:
        assert await ResourceRepository(conn).delete(original.uid)
    async with db.write() as conn:  # the same uid and labels can be written again
        await ResourceRepository(conn).insert(original)
