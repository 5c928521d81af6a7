"""The runs issue's acceptance, end to end: real server, real runners, real agent programs."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import REPO, ServerProcess, wait_until

pytestmark = pytest.mark.e2e

STAGED = str(REPO / "examples" / "agents" / "staged_agent.py")


def agent(
    name: str, command: list[str], *, replicas: int = 1, protocol: str = "jsonl", **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "clawfleet.dev/v1",
        "kind": "Agent",
        "metadata": {"name": name},
        "spec": {"adapter": "command", "command": command, "replicas": replicas,
                 "config": {"protocol": protocol}, **spec},
    }  # fmt: skip


def upper_agent(replicas: int) -> dict[str, Any]:
    return agent("upper", ["tr", "a-z", "A-Z"], replicas=replicas, protocol="text")


def staged_agent(replicas: int = 1) -> dict[str, Any]:
    return agent("staged", [sys.executable, STAGED], replicas=replicas)


def apply_and_wait_ready(http: httpx.Client, doc: dict[str, Any], ready: int) -> None:
    assert http.post("/apply", json=doc).status_code in (200, 201)
    name = doc["metadata"]["name"]

    def is_ready() -> bool:
        status = http.get(f"/agents/{name}").json()["status"]
        return status.get("readyReplicas", 0) >= ready

    wait_until(is_ready, 30, what=f"{ready} ready replicas of {name}")


def submit(http: httpx.Client, agent_name: str, prompt: str, **spec: Any) -> str:
    body = {"kind": "Task", "spec": {"agent": agent_name, "prompt": prompt, **spec}}
    response = http.post("/tasks", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["metadata"]["name"])


def all_tasks(http: httpx.Client) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 1000}
    while True:
        body = http.get("/tasks", params=params).json()
        items += body["items"]
        if not body["metadata"]["continue"]:
            return items
        params["continue"] = body["metadata"]["continue"]


def all_runs(http: httpx.Client) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 1000}
    while True:
        body = http.get("/runs", params=params).json()
        items += body["items"]
        if not body["metadata"]["continue"]:
            return items
        params["continue"] = body["metadata"]["continue"]


def wait_terminal(http: httpx.Client, count: int, timeout: float) -> list[dict[str, Any]]:
    def finished() -> list[dict[str, Any]] | None:
        tasks = all_tasks(http)
        done = [t for t in tasks if t["status"]["state"] in ("done", "failed", "cancelled")]
        return tasks if len(done) == count else None

    return wait_until(finished, timeout, interval=0.5, what=f"{count} tasks to finish")  # type: ignore[no-any-return]


def assert_each_done_exactly_once(http: httpx.Client, tasks: list[dict[str, Any]]) -> None:
    assert Counter(t["status"]["state"] for t in tasks) == {"done": len(tasks)}
    for task in tasks:
        assert task["status"]["result"]["output"] == task["spec"]["prompt"].upper()
    succeeded = Counter(
        r["spec"]["task"] for r in all_runs(http) if r["status"]["state"] == "succeeded"
    )
    assert all(succeeded[t["metadata"]["name"]] == 1 for t in tasks), "a task succeeded twice"
    assert len(succeeded) == len(tasks)


def test_300_tasks_on_3_replicas_each_done_once(server: ServerProcess) -> None:
    server.start()
    with server.http() as http:
        apply_and_wait_ready(http, upper_agent(3), 3)
        for i in range(300):
            submit(http, "upper", f"task number {i} says hello")
        tasks = wait_terminal(http, 300, 120)
        assert_each_done_exactly_once(http, tasks)
        instances = {r["spec"]["instance"] for r in all_runs(http)}
        assert len(instances) == 3  # the work was spread over every replica
    assert len(server.runner_pids()) == 3


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_kill_runner_retries_elsewhere_and_restarts_it(server: ServerProcess) -> None:
    server.start()
    with server.http() as http:
        apply_and_wait_ready(http, staged_agent(2), 2)
        data = {"stages": 6, "stageSeconds": 0.5}
        names = [
            submit(http, "staged", f"job {i}", data=data, retry={"maxAttempts": 3})
            for i in range(2)
        ]

        def both_running() -> list[dict[str, Any]] | None:
            runs = [r for r in all_runs(http) if r["status"]["state"] == "running"]
            return runs if len(runs) == 2 else None

        running = wait_until(both_running, 20, what="two running runs")
        victim_instance = running[0]["spec"]["instance"]
        victim = next(
            i
            for i in http.get("/instances").json()["items"]
            if i["metadata"]["uid"] == victim_instance
        )
        pid = int(victim["status"]["ref"].split(":")[0])
        os.kill(pid, signal.SIGKILL)

        tasks = wait_terminal(http, 2, 60)
        assert [t["status"]["state"] for t in tasks] == ["done", "done"]
        lost = http.get("/runs/" + running[0]["metadata"]["name"]).json()
        assert lost["status"]["state"] == "failed"
        assert lost["status"]["failureKind"] == "runner-lost"
        retried = next(t for t in tasks if t["metadata"]["name"] == running[0]["spec"]["task"])
        assert retried["status"]["attempts"] == 2
        assert retried["status"]["currentRun"] != running[0]["metadata"]["name"]

        def restarted() -> bool:
            inst = http.get(f"/instances/{victim['metadata']['name']}").json()
            return inst["status"]["restarts"] >= 1 and inst["status"]["phase"] == "Running"

        wait_until(restarted, 30, what="the killed instance to be restarted")
        assert names


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_scaling_up_leaves_the_running_instances_alone(server: ServerProcess) -> None:
    """B1: scale 2 -> 3 keeps the two running runner processes (same pids, no restart)."""
    server.start()
    with server.http() as http:
        apply_and_wait_ready(http, upper_agent(2), 2)

        def processes() -> dict[str, tuple[str, int]]:
            items = http.get("/instances").json()["items"]
            return {i["metadata"]["name"]: (i["status"]["ref"], i["status"]["restarts"])
                    for i in items if i["status"]["phase"] == "Running"}  # fmt: skip

        before = processes()
        assert len(before) == 2
        assert http.post("/agents/upper/scale", json={"replicas": 3}).status_code == 200
        wait_until(lambda: len(processes()) == 3, 30, what="a third running instance")
        after = processes()
        assert {name: after[name] for name in before} == before


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_three_runs_of_a_killed_runner_restart_elsewhere_within_2s(server: ServerProcess) -> None:
    """A runner dies holding 3 runs while another instance has 3 free slots waiting for work:
    all 3 retries start there at once (not one, and not after the dead one comes back)."""
    server.start()
    with server.http() as http:
        doc = staged_agent(1)
        doc["spec"]["concurrency"] = 3
        apply_and_wait_ready(http, doc, 1)
        data = {"stages": 40, "stageSeconds": 0.5}
        for i in range(3):
            submit(http, "staged", f"job {i}", data=data, retry={"maxAttempts": 3})

        def running(attempt: int) -> list[dict[str, Any]] | None:
            runs = [r for r in all_runs(http) if r["status"]["state"] == "running"
                    and r["spec"]["attempt"] == attempt]  # fmt: skip
            return runs if len(runs) == 3 else None

        first = wait_until(lambda: running(1), 20, what="three running runs")
        victim_id = first[0]["spec"]["instance"]
        assert {r["spec"]["instance"] for r in first} == {victim_id}
        http.post("/agents/staged/scale", json={"replicas": 2})
        wait_until(
            lambda: http.get("/agents/staged").json()["status"].get("readyReplicas", 0) >= 2,
            30, what="a second ready instance",
        )  # fmt: skip
        victim = next(i for i in http.get("/instances").json()["items"]
                      if i["metadata"]["uid"] == victim_id)  # fmt: skip
        os.kill(int(victim["status"]["ref"].split(":")[0]), signal.SIGKILL)
        killed = time.monotonic()
        retried = wait_until(lambda: running(2), 10, interval=0.05, what="three retried runs")
        took = time.monotonic() - killed
        assert victim_id not in {r["spec"]["instance"] for r in retried}
        assert took < 2.0, f"the retries took {took:.2f}s to start"


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_cancel_stops_the_program_and_steer_reaches_it(server: ServerProcess) -> None:
    server.start()
    with server.http() as http:
        apply_and_wait_ready(http, staged_agent(1), 1)
        name = submit(http, "staged", "long job", data={"stages": 40, "stageSeconds": 0.5})
        task = wait_until(
            lambda: (t := http.get(f"/tasks/{name}").json())["status"]["state"] == "working" and t,
            20,
            what="working",
        )
        run_id = task["status"]["currentRun"]
        assert http.post(f"/tasks/{name}/steer", json={"message": "prefer blue"}).status_code == 200

        def steered() -> bool:
            events = http.get(f"/runs/{run_id}/events").json()["events"]
            return any(
                e["type"] == "steer" and "prefer blue" in json.dumps(e["data"]) for e in events
            )

        wait_until(steered, 10, what="the steer to show in the run's events")
        started = time.monotonic()
        assert http.post(f"/tasks/{name}/cancel").status_code == 200
        wait_until(
            lambda: http.get(f"/tasks/{name}").json()["status"]["state"] == "cancelled",
            5,
            what="cancelled",
        )
        assert time.monotonic() - started < 5
        run = http.get(f"/runs/{run_id}").json()
        assert run["status"]["state"] == "cancelled"
        # the agent program is gone: no staged_agent.py process is left
        time.sleep(0.5)
        assert not _processes_running(STAGED)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_timeout_fails_the_task_and_stops_the_program(server: ServerProcess) -> None:
    server.start()
    with server.http() as http:
        apply_and_wait_ready(http, staged_agent(1), 1)
        name = submit(http, "staged", "too slow", timeout="2s", retry={"maxAttempts": 1},
                      data={"stages": 40, "stageSeconds": 0.5})  # fmt: skip
        wait_until(
            lambda: http.get(f"/tasks/{name}").json()["status"]["state"] == "failed",
            20,
            what="failed",
        )
        task = http.get(f"/tasks/{name}").json()
        assert task["status"]["failureKind"] == "timeout"
        time.sleep(0.5)
        assert not _processes_running(STAGED)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sse_resume_loses_and_duplicates_nothing(server: ServerProcess) -> None:
    server.start()
    with server.http() as http:
        apply_and_wait_ready(http, staged_agent(1), 1)
        name = submit(http, "staged", "watch me", data={"stages": 6, "stageSeconds": 0.3})
        run_id = wait_until(
            lambda: http.get(f"/tasks/{name}").json()["status"]["currentRun"], 20, what="a run"
        )
        token = (server.data_dir / "admin-token").read_text().strip()
        seen: list[int] = []
        last = 0
        for _ in range(50):  # connect, read a couple of events, drop the connection, resume
            headers = {"Authorization": f"Bearer {token}", "Last-Event-ID": str(last)}
            url = f"{server.url}/api/v1/runs/{run_id}/events/stream"
            with httpx.stream("GET", url, headers=headers, timeout=30) as response:
                ended = False
                taken = 0
                for line in response.iter_lines():
                    if line.startswith("id: "):
                        last = int(line[4:])
                        seen.append(last)
                        taken += 1
                    if line.startswith("event: end"):
                        ended = True
                        break
                    if taken == 2:
                        break
            if ended:
                break
        final = http.get(f"/runs/{run_id}/events").json()
        assert final["state"] == "succeeded"
        assert seen == list(range(1, final["lastSeq"] + 1))


def _processes_running(script: str) -> bool:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if script.encode() in cmdline and state != "Z":
                return True
    return False


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_kill_server_with_1000_tasks_then_restart(server: ServerProcess) -> None:
    server.start()
    with server.http() as http:
        apply_and_wait_ready(http, upper_agent(3), 3)
        for i in range(1000):
            submit(http, "upper", f"item {i}")
        wait_until(
            lambda: any(t["status"]["state"] == "done" for t in all_tasks(http)),
            30,
            what="progress",
        )
    before = sorted(server.runner_pids())
    assert len(before) == 3
    assert server.proc is not None
    server.proc.kill()  # kill -9 the control plane mid-stream
    server.proc.wait()
    server.kill()
    server.start()
    with server.http() as http:
        tasks = wait_terminal(http, 1000, 180)
        assert_each_done_exactly_once(http, tasks)
    assert sorted(server.runner_pids()) == before  # re-adopted, not relaunched


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sleeping_agent_wakes_for_work_and_sleeps_when_idle(server: ServerProcess) -> None:
    server.start()
    with server.http() as http:
        doc = upper_agent(1)
        doc["spec"].update(state="Sleeping", idleTimeout="2s")
        assert http.post("/apply", json=doc).status_code == 201
        time.sleep(1.5)
        assert http.get("/instances").json()["items"] == []  # asleep: nothing runs
        name = submit(http, "upper", "wake up")
        wait_until(
            lambda: http.get(f"/tasks/{name}").json()["status"]["state"] == "done", 30, what="done"
        )

        def asleep_again() -> bool:
            return http.get("/instances").json()["items"] == []

        wait_until(asleep_again, 30, what="the idle agent to go back to sleep")
        reasons = [e["reason"] for e in http.get("/agents/upper/events").json()["items"]]
        assert "Woke" in reasons
        assert "Slept" in reasons
        assert reasons.index("Woke") < len(reasons) - 1 - reasons[::-1].index("Slept")
    assert server.runner_pids() == []
