"""The controller base: the loop runs on the injected clock, wakes on its channels, and owns
the error rule (temporary → retry after the delay, permanent → mark failed)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from clawfleet.controllers.base import Controller
from clawfleet.core.errors import NotFound, PermanentError, TemporaryError
from clawfleet.domain.ids import Uid
from clawfleet.domain.resources import ResourceKey, ResourceRecord
from clawfleet.store.db import Database
from clawfleet.store.notify import Notifier
from clawfleet.testing.clock import FakeClock

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class Counter(Controller):
    name = "counter"
    interval = 5.0
    wake_channels = ("poke",)
    # The lease is taken at the first pass and not renewed during the test: fake time moves
    # while real database I/O runs (run_until), so a renewal would blur the measured intervals.
    lease_ttl = 3600.0

    async def reconcile_once(self) -> None:
        pass


async def test_the_loop_passes_once_per_interval_of_fake_time(
    db: Database, clock: FakeClock
) -> None:
    notifier = Notifier(clock)
    counter = Counter(db, clock, notifier)
    stopping = asyncio.Event()
    loop = asyncio.create_task(counter.run(stopping))
    try:
        await clock.run_until(lambda: counter.passes == 1, step=0)  # the first pass at once
        took = await clock.run_until(lambda: counter.passes == 2, step=0.5)
        assert took == pytest.approx(counter.interval, abs=0.5)
        took = await clock.run_until(lambda: counter.passes == 4, step=0.5)
        assert took == pytest.approx(2 * counter.interval, abs=0.5)
    finally:
        stopping.set()
        await loop


async def test_a_wake_up_on_its_channel_starts_a_pass_at_once(
    db: Database, clock: FakeClock
) -> None:
    notifier = Notifier(clock)
    counter = Counter(db, clock, notifier)
    stopping = asyncio.Event()
    loop = asyncio.create_task(counter.run(stopping))
    try:
        await clock.run_until(lambda: counter.passes == 1, step=0)
        await clock.run_until(lambda: clock.sleepers > 0, step=0)  # it waits for its interval
        await notifier.notify("elsewhere")
        await clock.settle()
        assert counter.passes == 1
        await notifier.notify("poke")
        took = await clock.run_until(lambda: counter.passes == 2, step=0)
        assert took == 0
    finally:
        stopping.set()
        await loop


# -- the error rule ----------------------------------------------------------------------------


def record(name: str, generation: int = 1) -> ResourceRecord:
    return ResourceRecord(
        uid=Uid(f"uid-{name}"), key=ResourceKey("Agent", "t", "p", name), generation=generation,
        resource_version=1, labels={}, annotations={}, spec={}, status={},
        created_at=NOW, updated_at=NOW,
    )  # fmt: skip


class Flaky(Controller):
    """Reconciles records by name: 'temporary', 'permanent', 'broken' fail, the others pass."""

    def __init__(self, db: Database, clock: FakeClock) -> None:
        super().__init__(db, clock, Notifier(clock))
        self.tried: list[str] = []
        self.failed: list[tuple[str, str]] = []

    async def reconcile(self, item: ResourceRecord) -> None:
        self.tried.append(item.key.name)
        if item.key.name == "temporary":
            raise TemporaryError("busy", delay=10)
        if item.key.name == "permanent":
            raise PermanentError("cannot run here")
        if item.key.name == "broken":
            raise NotFound("something is missing")

    async def mark_failed(self, item: ResourceRecord, message: str) -> None:
        self.failed.append((item.key.name, message))

    async def each(self, *items: ResourceRecord) -> list[str]:
        self.tried = []
        await self.reconcile_each(items, self.reconcile)
        return self.tried


@pytest.fixture
async def flaky(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Flaky]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}")
    yield Flaky(db, clock)
    await db.close()


async def test_a_temporary_error_retries_that_object_after_its_delay(
    flaky: Flaky, clock: FakeClock
) -> None:
    assert await flaky.each(record("temporary"), record("ok")) == ["temporary", "ok"]
    clock.advance(9)
    assert await flaky.each(record("temporary"), record("ok")) == ["ok"]
    clock.advance(1)
    assert await flaky.each(record("temporary"), record("ok")) == ["temporary", "ok"]
    assert flaky.failed == []


async def test_a_permanent_error_marks_the_object_failed_until_its_spec_changes(
    flaky: Flaky,
) -> None:
    assert await flaky.each(record("permanent"), record("ok")) == ["permanent", "ok"]
    assert flaky.failed == [("permanent", "cannot run here")]
    assert await flaky.each(record("permanent"), record("ok")) == ["ok"]
    assert flaky.failed == [("permanent", "cannot run here")]
    assert await flaky.each(record("permanent", generation=2)) == ["permanent"]
    assert len(flaky.failed) == 2


async def test_other_errors_are_retried_at_the_next_pass(flaky: Flaky) -> None:
    assert await flaky.each(record("broken"), record("ok")) == ["broken", "ok"]
    assert await flaky.each(record("broken"), record("ok")) == ["broken", "ok"]
    assert flaky.failed == []
