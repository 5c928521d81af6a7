#!/usr/bin/env python3
"""Dispatch benchmark: no-op tasks end to end through the real server and real runners.

`clawfleet up` runs as a subprocess on a free port with a temporary data dir, on SQLite and on a
throwaway PostgreSQL cluster. For each runner configuration an Agent of the `command` adapter
runs ``bench/noop_agent.py`` (long-lived JSONL) in R replicas of concurrency C; tasks go in over
HTTP as a user's would. Per configuration it measures:

- throughput: N tasks submitted by an async client with a fixed number in flight, from the first
  submit to the last task done (server timestamps; completion polled every 200 ms);
- latency for an idle runner: tasks submitted one at a time with a gap, and
  ``run.startedAt - task.createdAt`` (both server timestamps), plus the time from the client's
  send to the moment the agent program read the input (the same definition the Celery baseline
  uses, on the same machine clock).

A calibration probe (perf-anchors' cpu_probe) runs at the start and the end, and the CPU used by
the server, the runners and the database is recorded per phase, so a slow or shared machine shows.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import platform
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from clawfleet.testing.server_process import ServerProcess

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
NOOP_AGENT = BENCH / "noop_agent.py"
POLL_SECONDS = 0.2
CLK_TCK = os.sysconf("SC_CLK_TCK")

# celery_baseline imports the helpers below as `dispatch`; make that this very module.
if __name__ == "__main__":
    sys.modules.setdefault("dispatch", sys.modules["__main__"])


# -- measuring helpers (shared with celery_baseline.py) ---------------------------------------


def cpu_probe(seconds: float = 2.0) -> float:
    """perf-anchors' machine-speed probe: json round trips per second of one core."""
    start, n = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        json.loads(json.dumps({"a": n, "b": [1, 2, 3], "c": "x" * 50}))
        n += 1
    return n / seconds


def pct(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (as perf-anchors computes it); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def all_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def _stat(pid: int) -> list[str] | None:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU of live processes (children reaped by them included)."""
    total = 0
    for pid in pids:
        fields = _stat(pid)
        if fields is not None:
            # after the comm field: state=0 ... utime=11 stime=12 cutime=13 cstime=14
            total += sum(int(v) for v in fields[11:15])
    return total / CLK_TCK


def descendants(roots: Sequence[int]) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid in all_pids():
        fields = _stat(pid)
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(pid)
    found, todo = set(roots), list(roots)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return sorted(found)


def pids_under(root: Path) -> list[int]:
    """Live processes whose working directory is under ``root`` (everything we started)."""
    prefix = str(root.resolve())
    found = []
    for pid in all_pids():
        if pid == os.getpid():
            continue
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        fields = _stat(pid)
        if cwd.startswith(prefix) and fields is not None and fields[0] != "Z":
            found.append(pid)
    return found


def kill_tree_under(root: Path) -> int:
    """SIGKILL the process group of every process whose cwd is under ``root``."""
    pids = pids_under(root)
    own_group = os.getpgrp()
    for pid in pids:
        with contextlib.suppress(OSError):
            group = os.getpgid(pid)
            if group != own_group:
                os.killpg(group, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return len(pids)


class HostCpu:
    """Busy CPU of the whole host from /proc/stat, to tell our load from everybody else's."""

    @staticmethod
    def busy_seconds() -> float:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return (sum(fields[:8]) - idle) / CLK_TCK


@dataclass
class CpuMeter:
    """CPU used by groups of processes over a phase, in % of one core."""

    groups: dict[str, Callable[[], list[int]]]

    def start(self) -> None:
        self._pids = {name: pids() for name, pids in self.groups.items()}
        self._before = {name: cpu_seconds(p) for name, p in self._pids.items()}
        self._self = time.process_time()
        self._host = HostCpu.busy_seconds()
        self._wall = time.perf_counter()

    def stop(self) -> dict[str, float]:
        wall = time.perf_counter() - self._wall
        used = {name: cpu_seconds(self._pids[name]) - self._before[name] for name in self.groups}
        used["client"] = time.process_time() - self._self
        host = HostCpu.busy_seconds() - self._host
        used["others"] = max(0.0, host - sum(used.values()))
        used["host"] = host
        return {name: round(100 * value / wall, 1) for name, value in used.items()}


def machine_info() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem_kib = int(Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1])
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "kernel": platform.release(),
        "loadavg_at_start": os.getloadavg(),
    }


# -- the ClawFleet server ------------------------------------------------------------------


def clawfleet_server(root: Path, database_url: str | None) -> ServerProcess:
    """`python -m clawfleet up` on a free port with a data dir under ``root`` (the test kit's
    harness, the same one the e2e tests use), logging only warnings."""
    from clawfleet.testing.postgres import free_port

    root.mkdir(parents=True, exist_ok=True)
    return ServerProcess(
        data_dir=root / "data",
        port=free_port(),
        log_path=root / "server.log",
        database_url=database_url,
        cwd=root,
        extra_env={"CLAWFLEET_LOG__LEVEL": "warning"},
    )


def server_pids(server: ServerProcess) -> list[int]:
    return [server.pid] if server.pid is not None else []


def stop_server(server: ServerProcess, root: Path) -> None:
    if server.proc is not None:
        server.stop()
    kill_tree_under(root)  # runners survive the server by design


# -- talking to it ---------------------------------------------------------------------------


def parse_time(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def agent_doc(name: str, replicas: int, concurrency: int) -> dict[str, Any]:
    return {
        "apiVersion": "clawfleet.dev/v1",
        "kind": "Agent",
        "metadata": {"name": name},
        "spec": {
            "adapter": "command",
            "command": [sys.executable, str(NOOP_AGENT)],
            "replicas": replicas,
            "concurrency": concurrency,
            "config": {"protocol": "jsonl", "mode": "long-lived"},
        },
    }


async def wait_for(
    check: Callable[[], Awaitable[Any]], limit_s: float, what: str, interval: float = POLL_SECONDS
) -> Any:
    deadline = time.monotonic() + limit_s
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {limit_s:.0f} s waiting for {what}")
        await asyncio.sleep(interval)


class Api:
    def __init__(self, server: ServerProcess, in_flight: int) -> None:
        self.server = server
        self.http = httpx.AsyncClient(
            base_url=server.url + "/api/v1",
            headers={"Authorization": f"Bearer {server.token()}"},
            timeout=60,
            limits=httpx.Limits(max_connections=in_flight + 8, max_keepalive_connections=64),
        )

    async def close(self) -> None:
        await self.http.aclose()

    async def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path}: HTTP {response.status_code} {response.text}")
        return response.json()

    async def start_agent(self, name: str, replicas: int, concurrency: int) -> None:
        await self.ok("POST", "/apply", json=agent_doc(name, replicas, concurrency))

        async def ready() -> bool:
            status = (await self.ok("GET", f"/agents/{name}"))["status"] or {}
            return int(status.get("readyReplicas") or 0) >= replicas

        await wait_for(ready, 120, f"{replicas} ready replicas of {name}")

    async def stop_agent(self, name: str) -> None:
        await self.ok("DELETE", f"/agents/{name}")

        async def gone() -> bool:
            return not self.server.instance_pids()

        try:
            await wait_for(gone, 40, f"the runners of {name} to stop")
        except TimeoutError:
            kill_tree_under(self.server.data_dir / "instances")

    async def submit(self, agent: str) -> tuple[dict[str, Any], float]:
        """(the task view, the client's wall-clock time just before sending)."""
        body = {"kind": "Task", "spec": {"agent": agent, "prompt": "noop"}}
        sent = time.time()
        response = await self.http.post("/tasks", json=body)
        if response.status_code != 201:
            raise RuntimeError(f"submit: HTTP {response.status_code} {response.text}")
        return response.json(), sent

    async def unfinished(self, agent: str) -> bool:
        """Whether any task of ``agent`` is not terminal (states only move forward, so the
        order pending → claimed → working cannot miss one)."""
        for state in ("pending", "claimed", "working"):
            page = await self.ok(
                "GET", "/tasks", params={"agent": agent, "state": state, "limit": 1}
            )
            if page["items"]:
                return True
        return False

    async def wait_done(self, agent: str, limit_s: float) -> float:
        """Poll every 200 ms until every task of ``agent`` is terminal; the wall time then."""

        async def done() -> bool:
            return not await self.unfinished(agent)

        await wait_for(done, limit_s, f"the tasks of {agent} to finish")
        return time.time()

    async def tasks_of(self, agent: str) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        params: dict[str, Any] = {"agent": agent, "limit": 1000}
        for _ in range(10_000):
            page = await self.ok("GET", "/tasks", params=params)
            for item in page["items"]:
                found[item["metadata"]["name"]] = item
            if not page["metadata"]["continue"]:
                break
            params["continue"] = page["metadata"]["continue"]
        return found


# -- the phases ----------------------------------------------------------------------------


async def submit_many(api: Api, agent: str, count: int, in_flight: int) -> list[tuple[str, float]]:
    names: list[tuple[str, float]] = []
    left = count

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            view, sent = await api.submit(agent)
            names.append((view["metadata"]["name"], sent))

    await asyncio.gather(*(worker() for _ in range(min(in_flight, count))))
    return names


def _states(tasks: Sequence[dict[str, Any]]) -> dict[str, int]:
    return dict(Counter(t["status"]["state"] for t in tasks))


async def throughput_phase(
    api: Api, agent: str, count: int, in_flight: int, meter: CpuMeter, limit_s: float
) -> dict[str, Any]:
    meter.start()
    first_send = time.time()
    t0 = time.perf_counter()
    sent = await submit_many(api, agent, count, in_flight)
    submit_seconds = time.perf_counter() - t0
    done_seen = await api.wait_done(agent, limit_s)
    cpu = meter.stop()
    views = await api.tasks_of(agent)
    tasks = [views[name] for name, _ in sent]
    finished = [parse_time(t["status"]["finishedAt"]) for t in tasks if t["status"]["finishedAt"]]
    created = [parse_time(t["metadata"]["createdAt"]) for t in tasks]
    last_done = max(finished) if finished else done_seen
    return {
        "tasks": count,
        "in_flight": in_flight,
        "tasks_per_s": round(count / (last_done - first_send), 1),
        "tasks_per_s_polled": round(count / (done_seen - first_send), 1),
        "submit_per_s": round(count / submit_seconds, 1),
        "seconds": round(last_done - first_send, 3),
        "submit_to_done_p50_ms": ms(
            pct([f - c for f, c in zip(finished, created, strict=True)], 0.5)
        ),
        "states": _states(tasks),
        "cpu_pct": cpu,
    }


async def latency_phase(
    api: Api, agent: str, count: int, gap: float, meter: CpuMeter, limit_s: float
) -> dict[str, Any]:
    meter.start()
    sent: list[tuple[dict[str, Any], float]] = []
    rtts = []
    for _ in range(count):
        t0 = time.perf_counter()
        sent.append(await api.submit(agent))
        rtts.append(time.perf_counter() - t0)
        await asyncio.sleep(gap)
    await api.wait_done(agent, limit_s)
    cpu = meter.stop()
    views = await api.tasks_of(agent)
    limit = asyncio.Semaphore(16)

    async def runs(name: str) -> list[dict[str, Any]]:
        async with limit:
            return list((await api.ok("GET", f"/tasks/{name}/runs"))["items"])

    names = [view["metadata"]["name"] for view, _ in sent]
    all_runs = await asyncio.gather(*(runs(name) for name in names))
    to_start, send_to_agent, to_done = [], [], []
    for (view, sent_at), task_runs, name in zip(sent, all_runs, names, strict=True):
        created = parse_time(view["metadata"]["createdAt"])
        first = min(task_runs, key=lambda r: r["spec"]["attempt"], default=None)
        if first is None or not first["status"]["startedAt"]:
            continue
        to_start.append(parse_time(first["status"]["startedAt"]) - created)
        task = views[name]["status"]
        output = (task.get("result") or {}).get("output")
        if isinstance(output, dict) and "receivedAt" in output:
            send_to_agent.append(float(output["receivedAt"]) - sent_at)
        if task["finishedAt"]:
            to_done.append(parse_time(task["finishedAt"]) - created)
    return {
        "tasks": count,
        "gap_ms": round(gap * 1000, 1),
        "submit_to_start_p50_ms": ms(pct(to_start, 0.5)),
        "submit_to_start_p99_ms": ms(pct(to_start, 0.99)),
        "submit_to_start_max_ms": ms(pct(to_start, 1.0)),
        "send_to_agent_p50_ms": ms(pct(send_to_agent, 0.5)),
        "send_to_agent_p99_ms": ms(pct(send_to_agent, 0.99)),
        "submit_to_done_p50_ms": ms(pct(to_done, 0.5)),
        "submit_to_done_p99_ms": ms(pct(to_done, 0.99)),
        "submit_rtt_p50_ms": ms(pct(rtts, 0.5)),
        "submit_rtt_p99_ms": ms(pct(rtts, 0.99)),
        "states": _states([views[name] for name in names]),
        "cpu_pct": cpu,
    }


@dataclass(frozen=True)
class RunnerConfig:
    replicas: int
    concurrency: int

    @property
    def label(self) -> str:
        return (
            str(self.replicas) if self.concurrency == 1 else f"{self.replicas}x{self.concurrency}"
        )

    @classmethod
    def parse(cls, text: str) -> RunnerConfig:
        replicas, _, concurrency = text.strip().partition("x")
        return cls(int(replicas), int(concurrency or 1))


@dataclass
class Options:
    tasks: int
    warmup: int
    latency_tasks: int
    gap: float
    in_flight: int
    timeout: float
    profile_dir: Path | None


class Profiler:
    """py-spy over the server (and one runner) during a throughput phase, if asked for."""

    def __init__(self, out_dir: Path | None) -> None:
        self.out_dir = out_dir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, targets: dict[str, int]) -> None:
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if self.out_dir is None or not Path(spy).exists():
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for name, pid in targets.items():
            out = str(self.out_dir / f"{name}.txt")
            argv = [spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "250",
                    "--gil", "--nonblocking", "--output", out]  # fmt: skip
            quiet = subprocess.DEVNULL
            self.procs.append(subprocess.Popen(argv, stdout=quiet, stderr=quiet))

    def stop(self) -> None:
        for proc in self.procs:
            proc.send_signal(signal.SIGINT)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs = []


async def bench_config(
    server: ServerProcess,
    api: Api,
    config: RunnerConfig,
    options: Options,
    db_pids: Callable[[], list[int]],
    profile_name: str,
) -> dict[str, Any]:
    agent = f"noop-{config.label}"
    started = time.perf_counter()
    await api.start_agent(agent, config.replicas, config.concurrency)
    meter = CpuMeter(
        {"server": lambda: server_pids(server), "runners": server.instance_pids, "db": db_pids}
    )
    try:
        warm = await throughput_phase(
            api, agent, options.warmup, options.in_flight, meter, options.timeout
        )
        profiler = Profiler(options.profile_dir / profile_name if options.profile_dir else None)
        runners = server.runner_pids()
        targets = {"server": server_pids(server)[0]}
        if runners:
            targets["runner"] = runners[0]
        profiler.start(targets)
        try:
            tput = await throughput_phase(
                api, agent, options.tasks, options.in_flight, meter, options.timeout
            )
        finally:
            profiler.stop()
        # Open loop at no more than half the rate this configuration sustains, so the
        # runners are idle when a task arrives (perf-anchors section 4).
        gap = max(options.gap, 2 / tput["tasks_per_s"])
        lat = await latency_phase(api, agent, options.latency_tasks, gap, meter, options.timeout)
    finally:
        await api.stop_agent(agent)
    return {
        "runners": config.replicas,
        "concurrency": config.concurrency,
        "label": config.label,
        "warmup": {"tasks": options.warmup, "tasks_per_s": warm["tasks_per_s"]},
        "throughput": tput,
        "latency": lat,
        "seconds": round(time.perf_counter() - started, 1),
    }


@contextlib.contextmanager
def database(kind: str) -> Iterator[tuple[str | None, Callable[[], list[int]], str]]:
    """(database URL or None for SQLite, the database's pids, its version)."""
    if kind == "sqlite":
        yield None, list, f"SQLite {sqlite3.sqlite_version} (WAL, synchronous=NORMAL)"
        return
    from clawfleet.testing.postgres import PostgresCluster

    cluster = PostgresCluster()
    try:
        cluster.start()
        cluster.psql("CREATE DATABASE bench")
        version = subprocess.run(
            [str(cluster.bindir / "postgres"), "--version"], capture_output=True, text=True,
            check=False, timeout=30,
        ).stdout.strip()  # fmt: skip

        def pg_pids() -> list[int]:
            pidfile = cluster.datadir / "postmaster.pid"
            with contextlib.suppress(OSError, ValueError):
                return descendants([int(pidfile.read_text().split("\n", 1)[0])])
            return []

        yield cluster.url("bench"), pg_pids, f"{version} (test-kit cluster: fsync=off)"
    finally:
        cluster.stop()


async def bench_database(
    kind: str, root: Path, configs: Sequence[RunnerConfig], options: Options
) -> dict[str, Any]:
    with database(kind) as (url, db_pids, version):
        server = clawfleet_server(root / kind, url)
        try:
            server.start()
            api = Api(server, options.in_flight)
            try:
                rows = []
                for config in configs:
                    print(f"  {kind} runners={config.label} ...", file=sys.stderr, flush=True)
                    row = await bench_config(
                        server, api, config, options, db_pids, f"{kind}-{config.label}"
                    )
                    rows.append(row)
                    print(f"    {summary_line(row)}", file=sys.stderr, flush=True)
            finally:
                await api.close()
        except BaseException:
            if server.log_path.exists():
                tail = server.log_path.read_text(errors="replace")[-3000:]
                print(f"--- server log (tail):\n{tail}", file=sys.stderr)
            raise
        finally:
            stop_server(server, root / kind)
    return {"database": kind, "version": version, "configs": rows}


def summary_line(row: dict[str, Any]) -> str:
    t, lat = row["throughput"], row["latency"]
    return (
        f"{t['tasks_per_s']} tasks/s, start p50 {lat['submit_to_start_p50_ms']} ms "
        f"p99 {lat['submit_to_start_p99_ms']} ms, cpu {t['cpu_pct']}, {row['seconds']} s"
    )


# -- report --------------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "| system | store | runners | tasks/s | submit→start p50 / p99 (ms) "
        "| send→agent p50 / p99 (ms) | CPU % server / runners / db / others |",
        "|---|---|---|---|---|---|---|",
    ]
    celery = {row["label"]: row for row in results.get("celery", {}).get("configs", [])}
    for db in results["clawfleet"]:
        for row in db["configs"]:
            t, lat, cpu = row["throughput"], row["latency"], row["throughput"]["cpu_pct"]
            lines.append(
                f"| ClawFleet | {db['database']} | {row['label']} | {_fmt(t['tasks_per_s'])} "
                f"| {_fmt(lat['submit_to_start_p50_ms'], 2)} / "
                f"{_fmt(lat['submit_to_start_p99_ms'], 2)} "
                f"| {_fmt(lat['send_to_agent_p50_ms'], 2)} / "
                f"{_fmt(lat['send_to_agent_p99_ms'], 2)} "
                f"| {cpu['server']:.0f} / {cpu['runners']:.0f} / {cpu['db']:.0f} / "
                f"{cpu['others']:.0f} |"
            )
    for label, row in celery.items():
        t, lat, cpu = row["throughput"], row["latency"], row["throughput"]["cpu_pct"]
        lines.append(
            f"| Celery ({row['pool']}) | Redis | {label} | {_fmt(t['tasks_per_s'])} | - "
            f"| {_fmt(lat['send_to_start_p50_ms'], 2)} / {_fmt(lat['send_to_start_p99_ms'], 2)} "
            f"| {cpu['workers']:.0f} workers / {cpu['redis']:.0f} redis / {cpu['others']:.0f} |"
        )
    if celery:
        lines += ["", "| store | runners | ClawFleet / Celery tasks/s | send→start p50 ratio |"]
        lines.append("|---|---|---|---|")
        for db in results["clawfleet"]:
            for row in db["configs"]:
                other = celery.get(row["label"])
                if other is None:
                    continue
                ratio = row["throughput"]["tasks_per_s"] / other["throughput"]["tasks_per_s"]
                ours = row["latency"]["send_to_agent_p50_ms"]
                theirs = other["latency"]["send_to_start_p50_ms"]
                lat_ratio = f"{ours / theirs:.1f}x" if ours and theirs else "-"
                lines.append(f"| {db['database']} | {row['label']} | {ratio:.2f} | {lat_ratio} |")
    return "\n".join(lines)


# -- main ----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--tasks", type=int, default=1000, help="tasks per throughput phase")
    parser.add_argument(
        "--runners",
        default="1,4,16,4x4",
        help="runner configurations: R replicas of concurrency 1, or RxC (default 1,4,16,4x4)",
    )
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--celery", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--quick", action="store_true", help="small N: a smoke run (~1 min)")
    parser.add_argument("--warmup", type=int, default=200, help="tasks before measuring")
    parser.add_argument("--latency-tasks", type=int, default=200)
    parser.add_argument(
        "--gap-ms",
        type=float,
        default=20.0,
        help="least gap between latency submits (at least 2 / the configuration's tasks/s)",
    )
    parser.add_argument("--in-flight", type=int, default=32, help="concurrent submits")
    parser.add_argument(
        "--celery-pool",
        default="solo",
        choices=["solo", "prefork", "threads"],
        help="solo: R worker processes (-P solo; -P threads -c C for RxC); "
        "prefork/threads: one worker with R*C slots",
    )
    parser.add_argument("--profile", type=Path, help="py-spy raw stacks of the server into DIR")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    if args.quick:
        args.tasks, args.warmup, args.latency_tasks = 200, 50, 50
    return args


async def run_all(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    configs = [RunnerConfig.parse(text) for text in args.runners.split(",") if text.strip()]
    options = Options(
        tasks=args.tasks, warmup=args.warmup, latency_tasks=args.latency_tasks,
        gap=args.gap_ms / 1000, in_flight=args.in_flight,
        timeout=max(120.0, args.tasks / 20), profile_dir=args.profile,
    )  # fmt: skip
    results: dict[str, Any] = {"machine": machine_info(), "args": vars(args) | {}}
    results["args"]["profile"] = str(args.profile) if args.profile else None
    results["args"]["json"] = str(args.json) if args.json else None
    results["calibration"] = {"cpu_probe_start": round(cpu_probe())}
    print(f"cpu_probe {results['calibration']['cpu_probe_start']}/s", file=sys.stderr)
    started = time.perf_counter()
    results["clawfleet"] = []
    for kind in [d.strip() for d in args.databases.split(",") if d.strip()]:
        results["clawfleet"].append(await bench_database(kind, root, configs, options))
    if args.celery:
        import celery_baseline

        print("  celery ...", file=sys.stderr, flush=True)
        results["celery"] = await asyncio.to_thread(
            celery_baseline.run, root / "celery", configs, options, args.celery_pool
        )
    results["calibration"]["cpu_probe_end"] = round(cpu_probe())
    results["seconds"] = round(time.perf_counter() - started, 1)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.celery and importlib.util.find_spec("celery") is None:
        # Fail before the long ClawFleet rows, not after them.
        print(
            "error: the Celery baseline needs the bench dependencies: run `make bench`, "
            "or pass --no-celery",
            file=sys.stderr,
        )
        return 2
    root = Path(tempfile.mkdtemp(prefix="cf-bench-"))

    def interrupted(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)
    try:
        results = asyncio.run(run_all(args, root))
    finally:
        killed = kill_tree_under(root)
        if killed:
            print(f"cleaned up {killed} leftover processes", file=sys.stderr)
        shutil.rmtree(root, ignore_errors=True)
    table = markdown(results)
    cal = results["calibration"]
    print(
        f"\ncalibration: cpu_probe {cal['cpu_probe_start']}/s at start, "
        f"{cal['cpu_probe_end']}/s at end; total {results['seconds']} s\n"
    )
    print(table)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
