#!/usr/bin/env python3
"""The familiar baseline: the dispatch benchmark's workload on Celery with a local Redis.

The same no-op work, the same N, the same submit pattern as bench/dispatch.py: a Redis server
from the system package on a free 127.0.0.1 port (no persistence, in a temp dir), Celery workers
as subprocesses, tasks sent with ``apply_async`` from a pool of threads (as many as the
ClawFleet client keeps in flight). Throughput counts from the first send to the last result
stored (Celery's ``date_done``); latency is the task body's start (``time.time()`` in the
worker) minus the client's send time passed as the argument, on the same machine clock.

Worker layouts (``--celery-pool``): ``solo`` runs R worker processes with ``-P solo`` (one task
at a time each, like R runners of concurrency 1; ``-P threads -c C`` for RxC); ``prefork`` and
``threads`` run one worker with R*C slots. Run on its own: ``python bench/celery_baseline.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dispatch import BENCH, POLL_SECONDS, CpuMeter, Options, RunnerConfig, descendants, ms, pct

RESULT_PREFIX = "celery-task-meta-"


class RedisServer:
    """``redis-server`` on a free loopback port, without persistence, in ``root``."""

    def __init__(self, root: Path) -> None:
        from clawfleet.testing.postgres import free_port

        self.root = root
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(
                "redis-server is not installed (apt-get install -y redis-server), "
                "or run with --no-celery"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.root), "--daemonize", "no",
             "--logfile", str(self.root / "redis.log")],
            cwd=self.root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        import redis

        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 15
        while True:
            with contextlib.suppress(redis.ConnectionError):
                if client.ping():
                    return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def version(self) -> str:
        import redis

        return str(redis.Redis(port=self.port).info("server")["redis_version"])

    def pids(self) -> list[int]:
        return [self.proc.pid] if self.proc is not None and self.proc.poll() is None else []

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


class Workers:
    """Celery worker processes for one runner configuration."""

    def __init__(self, root: Path, config: RunnerConfig, pool: str, env: dict[str, str]) -> None:
        self.root = root
        self.env = env
        if pool == "solo":
            each = ["-P", "solo"] if config.concurrency == 1 else ["-P", "threads"]
            each += ["-c", str(config.concurrency)]
            self.argvs = [each] * config.replicas
            kind = "solo" if config.concurrency == 1 else f"threads -c {config.concurrency}"
            self.describe = f"{config.replicas} x -P {kind}"
        else:
            slots = config.replicas * config.concurrency
            self.argvs = [["-P", pool, "-c", str(slots)]]
            self.describe = f"1 x -P {pool} -c {slots}"
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, app: Any) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        for i, pool_args in enumerate(self.argvs):
            argv = [sys.executable, "-m", "celery", "-A", "celery_app", "worker", *pool_args,
                    "-n", f"w{i}@bench", "--loglevel", "WARNING", "--without-gossip",
                    "--without-mingle", "--without-heartbeat"]  # fmt: skip
            with (self.root / f"worker-{i}.log").open("ab") as log:
                proc = subprocess.Popen(
                    argv, env=self.env, cwd=self.root, stdout=log, stderr=log,
                    start_new_session=True,
                )  # fmt: skip
            self.procs.append(proc)
        deadline = time.monotonic() + 90
        while len(app.control.ping(timeout=0.5) or []) < len(self.procs):
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.procs):
                logs = "".join(p.read_text()[-1500:] for p in self.root.glob("worker-*.log"))
                raise RuntimeError(f"celery workers did not come up:\n{logs}")
            time.sleep(0.2)

    def pids(self) -> list[int]:
        return descendants([p.pid for p in self.procs if p.poll() is None])

    def stop(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        for proc in self.procs:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        self.procs = []


def _done_time(meta: dict[str, Any]) -> float:
    when = datetime.fromisoformat(meta["date_done"])
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


class Bench:
    def __init__(self, redis_server: RedisServer, options: Options) -> None:
        import redis

        from celery_app import app, noop

        self.app, self.noop = app, noop
        self.results = redis.Redis.from_url(redis_server.url(1))
        self.options = options

    def _wait_results(self, count: int) -> float:
        deadline = time.monotonic() + self.options.timeout
        while self.results.dbsize() < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {self.results.dbsize()} of {count} celery results")
            time.sleep(POLL_SECONDS)
        return time.time()

    def _metas(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        raw = self.results.mget([RESULT_PREFIX + task_id for task_id in ids])
        return [json.loads(item) for item in raw if item is not None]

    def throughput(self, count: int, meter: CpuMeter) -> dict[str, Any]:
        self.results.flushdb()
        in_flight = self.options.in_flight
        meter.start()
        first_send = time.time()
        t0 = time.perf_counter()

        def send(_: int) -> str:
            return str(self.noop.apply_async(args=(time.time(),)).id)

        with ThreadPoolExecutor(in_flight) as pool:
            ids = list(pool.map(send, range(count)))
        submit_seconds = time.perf_counter() - t0
        seen = self._wait_results(count)
        cpu = meter.stop()
        metas = self._metas(ids)
        last = max(_done_time(m) for m in metas)
        return {
            "tasks": count,
            "in_flight": in_flight,
            "tasks_per_s": round(count / (last - first_send), 1),
            "tasks_per_s_polled": round(count / (seen - first_send), 1),
            "submit_per_s": round(count / submit_seconds, 1),
            "seconds": round(last - first_send, 3),
            "states": dict(Counter(m["status"] for m in metas)),
            "cpu_pct": cpu,
        }

    def latency(self, count: int, gap: float, meter: CpuMeter) -> dict[str, Any]:
        self.results.flushdb()
        meter.start()
        ids, rtts = [], []
        for _ in range(count):
            t0 = time.perf_counter()
            ids.append(str(self.noop.apply_async(args=(time.time(),)).id))
            rtts.append(time.perf_counter() - t0)
            time.sleep(gap)
        self._wait_results(count)
        cpu = meter.stop()
        metas = self._metas(ids)
        starts = [m["result"]["started"] - m["result"]["submitted"] for m in metas]
        done = [_done_time(m) - m["result"]["submitted"] for m in metas]
        return {
            "tasks": count,
            "gap_ms": round(gap * 1000, 1),
            "send_to_start_p50_ms": ms(pct(starts, 0.5)),
            "send_to_start_p99_ms": ms(pct(starts, 0.99)),
            "send_to_start_max_ms": ms(pct(starts, 1.0)),
            "send_to_done_p50_ms": ms(pct(done, 0.5)),
            "send_to_done_p99_ms": ms(pct(done, 0.99)),
            "submit_rtt_p50_ms": ms(pct(rtts, 0.5)),
            "states": dict(Counter(m["status"] for m in metas)),
            "cpu_pct": cpu,
        }


def run(root: Path, configs: Sequence[RunnerConfig], options: Options, pool: str) -> dict[str, Any]:
    """Start Redis, then per configuration the workers, warm-up, throughput and latency."""
    import celery

    redis_server = RedisServer(root / "redis")
    try:
        redis_server.start()
        env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_CELERY_")}
        env |= {
            "BENCH_CELERY_BROKER": redis_server.url(0),
            "BENCH_CELERY_BACKEND": redis_server.url(1),
            "PYTHONPATH": str(BENCH),
        }
        os.environ.update({k: env[k] for k in ("BENCH_CELERY_BROKER", "BENCH_CELERY_BACKEND")})
        bench = Bench(redis_server, options)
        rows = []
        for config in configs:
            print(f"  celery runners={config.label} ...", file=sys.stderr, flush=True)
            started = time.perf_counter()
            workers = Workers(root / f"workers-{config.label}", config, pool, env)
            try:
                workers.start(bench.app)
                meter = CpuMeter({"workers": workers.pids, "redis": redis_server.pids})
                warm = bench.throughput(options.warmup, meter)
                tput = bench.throughput(options.tasks, meter)
                gap = max(options.gap, 2 / tput["tasks_per_s"])
                lat = bench.latency(options.latency_tasks, gap, meter)
            finally:
                workers.stop()
            rows.append({
                "label": config.label, "runners": config.replicas,
                "concurrency": config.concurrency, "pool": workers.describe,
                "warmup": {"tasks": options.warmup, "tasks_per_s": warm["tasks_per_s"]},
                "throughput": tput, "latency": lat,
                "seconds": round(time.perf_counter() - started, 1),
            })  # fmt: skip
            print(
                f"    {tput['tasks_per_s']} tasks/s, start p50 {lat['send_to_start_p50_ms']} ms "
                f"p99 {lat['send_to_start_p99_ms']} ms, cpu {tput['cpu_pct']}",
                file=sys.stderr,
                flush=True,
            )
        return {
            "celery": celery.__version__,
            "redis": redis_server.version(),
            "layout": pool,
            "configs": rows,
        }
    finally:
        redis_server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    from dispatch import kill_tree_under, parse_args

    args = parse_args(argv)
    configs = [RunnerConfig.parse(text) for text in args.runners.split(",") if text.strip()]
    options = Options(
        tasks=args.tasks, warmup=args.warmup, latency_tasks=args.latency_tasks,
        gap=args.gap_ms / 1000, in_flight=args.in_flight, timeout=max(120.0, args.tasks / 20),
        profile_dir=None,
    )  # fmt: skip
    root = Path(tempfile.mkdtemp(prefix="cf-celery-"))
    try:
        results = run(root, configs, options, args.celery_pool)
    finally:
        kill_tree_under(root)
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
