"""Shared fixtures: the same store, service and API tests run on SQLite and on PostgreSQL.

PostgreSQL is a throwaway cluster on 127.0.0.1 started once per session from the local server
binaries. Each test gets its own database, copied from a migrated template. Under CI=true a
cluster that cannot start fails the run instead of skipping the PostgreSQL half.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from clawfleet.core.settings import Settings
from clawfleet.server import ControlPlane, build_control_plane
from clawfleet.store import migrate
from clawfleet.store.db import Database
from clawfleet.testing.clock import FakeClock
from clawfleet.testing.postgres import PostgresCluster, PostgresUnavailable

BACKENDS = ["sqlite", "postgres"]
TEMPLATE_DB = "cf_template"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("db_url") == "postgres":
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    try:
        cluster = PostgresCluster().start()
    except PostgresUnavailable as exc:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"PostgreSQL is required under CI but could not start: {exc}")
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    try:
        cluster.psql(f"CREATE DATABASE {TEMPLATE_DB}")

        async def _migrate() -> None:
            db = Database(f"postgresql+asyncpg://{cluster.url(TEMPLATE_DB).split('://', 1)[1]}")
            await migrate.upgrade(db)
            await db.close()

        asyncio.run(_migrate())
        yield cluster
    finally:
        cluster.stop()


def new_pg_database(cluster: PostgresCluster, *, migrated: bool = True) -> str:
    """A new database: a copy of the migrated template, or empty."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    cluster.psql(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB if migrated else 'template0'}")
    return cluster.url(name)


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated-or-migratable database URL on each backend."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'clawfleet.db'}"
        return
    cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
    url = new_pg_database(cluster)
    yield url
    name = url.rsplit("/", 1)[1]
    cluster.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def async_url(url: str) -> str:
    return (
        "postgresql+asyncpg://" + url.split("://", 1)[1] if url.startswith("postgresql:") else url
    )


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(async_url(db_url))
    if database.is_sqlite:
        await migrate.upgrade(database)
    yield database
    await database.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", database={"url": db_url})


@pytest.fixture
async def plane(settings: Settings, clock: FakeClock) -> AsyncIterator[ControlPlane]:
    control_plane = await build_control_plane(settings, clock)
    yield control_plane
    await control_plane.db.close()


@pytest.fixture
async def api(plane: ControlPlane) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the real app (in-process ASGI), authenticated as the bootstrap admin."""
    transport = httpx.ASGITransport(app=plane.app)
    headers = {"Authorization": f"Bearer {plane.admin_token}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://clawfleet.test", headers=headers
    ) as client:
        yield client


@pytest.fixture
async def anon(plane: ControlPlane) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=plane.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://clawfleet.test") as client:
        yield client
