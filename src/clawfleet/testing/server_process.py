"""The real `clawfleet up` as a child process, for whole-system tests and benchmarks.

One harness for the e2e suite and ``bench/dispatch.py``: a server on its own port and data dir,
started as a user starts it (after `clawfleet db upgrade` on PostgreSQL), waited for by polling
both the process and ``/readyz``, and cleaned up together with the runners it launched (runners
outlive the server by design, so stopping the server alone leaves them running).

A start that fails says why: the exit code or that the process still runs, the last answer of
the health probe, and the tail of the server's log. The child runs unbuffered, so its log is never
empty just because Python had not flushed it yet. Under load the deadline grows with the load
average, because a slow start on a busy machine is not a failure.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from clawfleet.core.paths import ADMIN_TOKEN_FILE
from clawfleet.runtimes.local_process import is_alive
from clawfleet.runtimes.local_records import CorruptRecord, InstancePaths, load_record

START_SECONDS = 45.0  # on an idle machine; see ``start_deadline``
START_SECONDS_MAX = 100.0  # stays under the e2e per-test timeout of 120 s
LOG_TAIL_CHARS = 4000


class ServerStartError(AssertionError):
    """`clawfleet up` exited or did not become ready; the message holds the evidence."""


def start_deadline(base: float = START_SECONDS, cap: float = START_SECONDS_MAX) -> float:
    """Seconds to wait for a start: ``base``, stretched by the load per core, at most ``cap``."""
    try:
        load = os.getloadavg()[0] / (os.cpu_count() or 1)
    except OSError:
        load = 1.0
    return min(cap, base * max(1.0, load))


def live_pids_under(root: Path, *, needle: bytes | None = None) -> list[int]:
    """Live processes whose working directory is under ``root`` (and whose command line
    contains ``needle``, when given); zombies are left out."""
    prefix = str(root.resolve())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cmdline = (entry / "cmdline").read_bytes() if needle is not None else b""
        except (OSError, IndexError):
            continue
        if cwd.startswith(prefix) and state != "Z" and (needle is None or needle in cmdline):
            found.append(int(entry.name))
    return found


@dataclass
class ServerProcess:
    """`python -m clawfleet up --port PORT` with ``CLAWFLEET_DATA_DIR=data_dir``."""

    data_dir: Path
    port: int
    log_path: Path
    database_url: str | None = None
    cwd: Path | None = None
    extra_env: Mapping[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """The environment of the server and of CLI calls: none of the caller's CLAWFLEET_*
        variables, this server's data dir and URL, and no client config file."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLAWFLEET_")}
        env |= {
            "CLAWFLEET_DATA_DIR": str(self.data_dir),
            "CLAWFLEET_SERVER": self.url,
            "CLAWFLEET_CONFIG": str(self.data_dir / "no-client-config"),
            "PYTHONUNBUFFERED": "1",
        }
        return env | dict(self.extra_env)

    def token(self) -> str:
        return (self.data_dir / ADMIN_TOKEN_FILE).read_text().strip()

    def http(self) -> httpx.Client:
        """An API client as the bootstrap admin."""
        return httpx.Client(
            base_url=self.url + "/api/v1",
            headers={"Authorization": f"Bearer {self.token()}"},
            timeout=30,
        )

    def start(self, *, upgrade: bool = True, timeout: float | None = None) -> ServerProcess:
        """Start `clawfleet up`; on PostgreSQL run `clawfleet db upgrade` first unless told not."""
        if self.database_url and upgrade:
            self.cli("db", "upgrade", "--database-url", self.database_url)
        args = [sys.executable, "-m", "clawfleet", "up", "--port", str(self.port)]
        if self.database_url:
            args += ["--database-url", self.database_url]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            args, env=self.env(), stdout=self._log, stderr=self._log, cwd=self.cwd,
            start_new_session=True,  # a Ctrl-C in the terminal of the tests is not meant for it
        )  # fmt: skip
        self.wait_ready(start_deadline() if timeout is None else timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        """Return once ``/readyz`` answers 200; raise ``ServerStartError`` with the evidence
        when the process exits first or ``timeout`` seconds pass."""
        assert self.proc is not None, "start() first"
        started = time.monotonic()
        last = "no answer yet"
        while True:
            code = self.proc.poll()
            if code is not None:
                report = self._report(f"exited with code {code}", started, last)
                self.kill()  # closes the log
                raise ServerStartError(report)
            try:
                answer = httpx.get(f"{self.url}/readyz", timeout=2)
                if answer.status_code == 200:
                    return
                last = f"HTTP {answer.status_code}: {answer.text[:200]}"
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
            if time.monotonic() - started > timeout:
                alive = f"is still running (pid {self.proc.pid}) but not ready"
                raise ServerStartError(self._report(alive, started, last))
            time.sleep(0.1)

    def _report(self, what: str, started: float, probe: str) -> str:
        waited = time.monotonic() - started
        try:
            log = self.log_path.read_text(errors="replace")
        except OSError as exc:
            log = f"(cannot read {self.log_path}: {exc})"
        tail = log[-LOG_TAIL_CHARS:] if log.strip() else "(empty: the process printed nothing)"
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        return (
            f"`clawfleet up` on port {self.port} {what} after {waited:.1f}s "
            f"(load average {load}); last /readyz probe: {probe}\n"
            f"--- {self.log_path} (tail) ---\n{tail}"
        )

    def stop(self, timeout: float = 20.0) -> int:
        """Ctrl-C, as a user would; returns the exit status (the process is killed if it
        does not stop within ``timeout``)."""
        assert self.proc is not None, "start() first"
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.kill()

    def kill(self) -> None:
        """Kill the server at once (runners are left alone: see ``kill_runners``)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def instance_pids(self) -> list[int]:
        """Runners and the agent programs they started (their cwd is under the data dir)."""
        return sorted({*self.runner_pids(), *live_pids_under(self.data_dir / "instances")})

    def runner_pids(self) -> list[int]:
        """Live runner processes of this data dir, from the local runtime's records: a runner
        is not dumpable, so no other process of the user can read its cwd in /proc."""
        pids = []
        for path in (self.data_dir / "instances").glob("*"):
            with contextlib.suppress(OSError, CorruptRecord):
                record = load_record(InstancePaths(path))
                if record is not None and is_alive(record.pid, record.starttime):
                    pids.append(record.pid)
        return sorted(pids)

    def kill_runners(self) -> None:
        """SIGKILL every runner's process group (each runner leads its own)."""
        own = os.getpgrp()
        for pid in self.instance_pids():
            with contextlib.suppress(OSError):
                group = os.getpgid(pid)
                if group != own:
                    os.killpg(group, signal.SIGKILL)

    def cli(
        self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run `python -m clawfleet ARGS` against this server; with ``check``, a non-zero exit
        raises with both output streams."""
        result = subprocess.run(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "clawfleet", *args],
            env=self.env(), input=stdin, capture_output=True, text=True, timeout=timeout,
            cwd=self.cwd, check=False,
        )  # fmt: skip
        if check and result.returncode != 0:
            raise AssertionError(
                f"clawfleet {' '.join(args)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result
