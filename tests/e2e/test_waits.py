"""Waiting for work from the CLI, in real time: no polling, a reason, a timeout, and Ctrl-C
that leaves the task running and says so."""

from __future__ import annotations

import signal
import subprocess
import sys
from typing import IO, Any

import pytest

from tests.e2e.conftest import REPO, ServerProcess, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("backend", ["sqlite"], indirect=True)]


def _agent(name: str, command: list[str], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "clawfleet.dev/v1",
        "kind": "Agent",
        "metadata": {"name": name},
        "spec": {"adapter": "command", "command": command, "config": {"protocol": "text"}, **spec},
    }


def _start(server: ServerProcess) -> None:
    # Every request in the log, whatever level the access log of long polls gets.
    server.extra_env = {**server.extra_env, "CLAWFLEET_LOG__LEVEL": "debug"}
    server.start()


def _as_in_a_terminal() -> None:
    # A suite run in the background (`make test &`, some CI runners) ignores SIGINT, and a child
    # inherits that: Python then installs no KeyboardInterrupt handler. A user's Ctrl-C in a
    # terminal always arrives, so the CLI under test gets the default disposition back.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _popen(server: ServerProcess, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "clawfleet", *args], env=server.env(), cwd=REPO, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_as_in_a_terminal,
    )  # fmt: skip


def _read_until(stream: IO[str] | None, needle: str) -> list[str]:
    assert stream is not None
    lines = []
    for line in stream:  # blocks until the CLI prints; the test timeout bounds it
        lines.append(line)
        if needle in line:
            return lines
    raise AssertionError(f"{needle!r} never printed; got {lines}")


def test_a_stopped_agent_is_waited_for_without_polling(server: ServerProcess) -> None:
    _start(server)
    with server.http() as http:
        assert http.post("/apply", json=_agent("idle", ["cat"], state="Stopped")).is_success
    done = server.cli("run", "idle", "hi", "--wait", "--wait-timeout", "3s", check=False)
    assert done.returncode == 1
    name = done.stderr.split()[0].removeprefix("task/")
    assert done.stderr.count("waiting: agent 'idle' has no ready instance: phase Stopped") == 1
    assert f"task/{name} still pending after 3s; it keeps running" in done.stderr
    log = server.log_path.read_text()
    # a first short wait (2 s, then the reason is printed) and one long poll for the rest
    assert log.count(f"GET /api/v1/tasks/{name}/wait ") == 2
    assert f"GET /api/v1/tasks/{name} " not in log  # and no polling of the task


def test_run_wait_reports_the_reason_then_the_result_once_the_agent_wakes(
    server: ServerProcess,
) -> None:
    _start(server)
    with server.http() as http:
        assert http.post("/apply", json=_agent("later", ["cat"], state="Stopped")).is_success
        waiting = _popen(server, "run", "later", "hello", "--wait")
        _read_until(waiting.stderr, "waiting: agent 'later' has no ready instance")
        assert http.post("/agents/later/wake").is_success
        out, err = waiting.communicate(timeout=60)
    assert (waiting.returncode, out) == (0, "hello\n"), err


def test_ctrl_c_during_run_wait_says_the_task_keeps_running(server: ServerProcess) -> None:
    _start(server)
    with server.http() as http:
        assert http.post("/apply", json=_agent("idle", ["cat"], state="Stopped")).is_success
    waiting = _popen(server, "run", "idle", "hi", "--wait")
    first = _read_until(waiting.stderr, "waiting:")
    name = first[0].split()[0].removeprefix("task/")
    waiting.send_signal(signal.SIGINT)
    _, err = waiting.communicate(timeout=30)
    assert waiting.returncode == 130
    assert (
        f"task/{name} keeps running; cancel it with `clawfleet cancel {name}`, or get its "
        f"result later with `clawfleet result {name}`"
    ) in err
    assert "Traceback" not in err
    assert server.cli("cancel", name).stdout == f"task/{name} cancelled\n"


def test_ctrl_c_during_events_follow_says_the_task_keeps_running(server: ServerProcess) -> None:
    _start(server)
    with server.http() as http:
        assert http.post("/apply", json=_agent("slow", ["sleep", "60"])).is_success
        name = server.cli("run", "slow", "x").stdout.strip().removeprefix("task/")
        wait_until(
            lambda: http.get(f"/tasks/{name}").json()["status"]["currentRun"], 60, what="a run"
        )
    following = _popen(server, "events", "-f", f"task/{name}")
    _read_until(following.stdout, "status")
    following.send_signal(signal.SIGINT)
    _, err = following.communicate(timeout=30)
    assert following.returncode == 130
    assert f"task/{name} keeps running; cancel it with `clawfleet cancel {name}`" in err
    server.cli("cancel", name)
