"""A throwaway PostgreSQL cluster on 127.0.0.1, started from the local server binaries.

Used by the test suite and the benchmarks: ``initdb`` into a temporary directory, ``pg_ctl start``
on a free port with fsync off, and ``stop()`` removes everything. initdb refuses to run as root,
so as root the binaries run as the ``postgres`` user (``runuser``).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    """The local PostgreSQL binaries are missing or the cluster did not start."""


def find_bindir() -> Path | None:
    env = os.environ.get("CLAWFLEET_PG_BINDIR")
    candidates = [env] if env else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    if found := shutil.which("pg_ctl"):
        candidates.append(str(Path(found).parent))
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists():
            return Path(candidate)
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresCluster:
    def __init__(self, bindir: Path | None = None, user: str = "clawfleet") -> None:
        found = bindir or find_bindir()
        if found is None:
            raise PostgresUnavailable(
                "no PostgreSQL server binaries (initdb, pg_ctl) found; install postgresql-15"
            )
        self.bindir = found
        self.user = user
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="cf-pg-"))
        self.datadir = self.root / "data"
        self._as_postgres = os.geteuid() == 0
        self.started = False

    @property
    def base_url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}"

    def url(self, database: str = "postgres") -> str:
        return f"{self.base_url}/{database}"

    def _run(self, *args: str) -> None:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        result = subprocess.run(  # noqa: S603 - our own binaries, no shell
            cmd, capture_output=True, text=True, timeout=120, check=False
        )
        if result.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise PostgresUnavailable(
                f"{args[0]} failed ({result.returncode}): {result.stderr.strip()[-2000:]}\n{tail}"
            )

    def start(self) -> PostgresCluster:
        if self._as_postgres:
            try:
                entry = pwd.getpwnam("postgres")
            except KeyError as exc:
                raise PostgresUnavailable("running as root but there is no postgres user") from exc
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self.root.chmod(0o700)
        self._run(
            "initdb",
            "-D", str(self.datadir),
            "-A", "trust",
            "-U", self.user,
            "-E", "UTF8",
            "--no-sync",
            "--locale=C",
        )  # fmt: skip
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=300 -c shared_buffers=128MB"
        )
        self._run(
            "pg_ctl", "-D", str(self.datadir), "-o", options,
            "-l", str(self.root / "server.log"), "-w", "-t", "60", "start",
        )  # fmt: skip
        self.started = True
        return self

    def psql(self, sql: str, database: str = "postgres") -> None:
        self._run(
            "psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user,
            "-d", database, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql,
        )  # fmt: skip

    def stop(self) -> None:
        if self.started:
            with contextlib.suppress(PostgresUnavailable, subprocess.TimeoutExpired):
                self._run("pg_ctl", "-D", str(self.datadir), "-m", "immediate", "-w", "stop")
            self.started = False
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
