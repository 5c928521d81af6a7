"""Whole-system fixtures: the real `clawfleet up` process and the real CLI, as subprocesses."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from clawfleet.testing.postgres import PostgresCluster, free_port
from tests.conftest import new_pg_database

REPO = Path(__file__).resolve().parents[2]


@dataclass
class ServerProcess:
    data_dir: Path
    port: int
    database_url: str | None
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    _log: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLAWFLEET_")}
        env |= {
            "CLAWFLEET_DATA_DIR": str(self.data_dir),
            "CLAWFLEET_SERVER": self.url,
            "CLAWFLEET_CONFIG": str(self.data_dir / "no-client-config"),
            # Faster failure detection than the defaults, so tests do not wait 15 s.
            "CLAWFLEET_DISPATCH__LEASE_SECONDS": "6",
            "CLAWFLEET_DISPATCH__LOST_AFTER_SECONDS": "6",
            "CLAWFLEET_DISPATCH__HEARTBEAT_SECONDS": "1",
        }
        return env

    def http(self) -> httpx.Client:
        token = (self.data_dir / "admin-token").read_text().strip()
        return httpx.Client(
            base_url=self.url + "/api/v1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )

    def runner_pids(self) -> list[int]:
        """Live runner processes of this data dir (their cwd is under it)."""
        root = str((self.data_dir / "instances").resolve())
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
                cwd = os.readlink(entry / "cwd")
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if b"runner" in cmdline and cwd.startswith(root) and state != "Z":
                pids.append(int(entry.name))
        return pids

    def kill_runners(self) -> None:
        for pid in self.runner_pids():
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)

    def start(self, *, upgrade: bool = True) -> ServerProcess:
        """Start `clawfleet up`; on PostgreSQL run `clawfleet db upgrade` first unless told not."""
        if self.database_url and upgrade:
            self.cli("db", "upgrade", "--database-url", self.database_url)
        args = [sys.executable, "-m", "clawfleet", "up", "--port", str(self.port)]
        if self.database_url:
            args += ["--database-url", self.database_url]
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            args, env=self.env(), stdout=self._log, stderr=self._log, cwd=REPO
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited early:\n{self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server did not become ready:\n{self.log_path.read_text()}")

    def stop(self) -> int:
        """Ctrl-C, as a user would; returns the exit status."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=20)
        finally:
            self.kill()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def cli(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "clawfleet", *args],
            env=self.env(),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"clawfleet {' '.join(args)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result


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
        database_url=backend,
        log_path=tmp_path / "server.log",
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
