"""Whole-system fixtures: the real `clawfleet up` process and the real CLI, as subprocesses.

The harness itself lives in the test kit (``clawfleet.testing.server_process``), shared with the
benchmarks; here it only gets the settings that make failures show up in seconds, not minutes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clawfleet.testing.postgres import PostgresCluster, free_port
from clawfleet.testing.server_process import ServerProcess
from tests.conftest import new_pg_database

REPO = Path(__file__).resolve().parents[2]

# Faster failure detection than the defaults, so tests do not wait 15 s.
FAST_FAILURES = {
    "CLAWFLEET_DISPATCH__LEASE_SECONDS": "6",
    "CLAWFLEET_DISPATCH__LOST_AFTER_SECONDS": "6",
    "CLAWFLEET_DISPATCH__HEARTBEAT_SECONDS": "1",
}

__all__ = ["REPO", "ServerProcess", "wait_until"]


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
    yield new_pg_database(cluster, migrated=False)


@pytest.fixture
def server(backend: str | None, tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(
        data_dir=tmp_path / "data",
        port=free_port(),
        log_path=tmp_path / "server.log",
        database_url=backend,
        cwd=REPO,
        extra_env=FAST_FAILURES,
    )
    yield process
    process.kill()
    process.kill_runners()


def wait_until(
    predicate: Any, timeout: float, interval: float = 0.1, what: str = "condition"
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
