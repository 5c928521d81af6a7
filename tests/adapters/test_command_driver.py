"""The command driver against real agent programs (small Python scripts and the shell)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from clawfleet.adapters.base import AgentBundle, AgentEvent, RunInput
from clawfleet.adapters.command import CommandDriver, validate_command_config
from clawfleet.adapters.command_process import LineSplitter
from clawfleet.adapters.command_protocol import parse_event_line
from clawfleet.core.errors import Conflict, InvalidInput, NotFound, PermanentError

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "agents"
PY = sys.executable
MARK = "CLAWFLEET_TEST_MARK"

PRELUDE = """\
import json, os, signal, sys, time
def emit(**event):
    print(json.dumps(event), flush=True)
def read():
    return json.loads(sys.stdin.readline())
"""


# --- fixtures and helpers -------------------------------------------------------------------


def _processes_marked(mark: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if f"{MARK}={mark}".encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.fixture
def mark() -> Iterator[str]:
    """A value put in every test program's env, to prove none is left running afterwards."""
    value = uuid.uuid4().hex
    yield value
    deadline = time.monotonic() + 2.0
    while (left := _processes_marked(value)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, f"agent processes left behind: {left}"


@pytest.fixture
async def driver(mark: str) -> AsyncIterator[CommandDriver]:
    cmd = CommandDriver(exit_wait=0.5)
    yield cmd
    await cmd.stop(grace=0.5)


@pytest.fixture
def bundle_for(tmp_path: Path, mark: str) -> Callable[..., AgentBundle]:
    def make(argv: list[str], *, env: dict[str, str] | None = None, **config: str) -> AgentBundle:
        return AgentBundle(
            adapter="command",
            command=argv,
            workdir=tmp_path,
            config=config,
            env={MARK: mark, **(env or {})},
        )

    return make


@pytest.fixture
def agent(tmp_path: Path) -> Callable[[str], list[str]]:
    """The argv of a Python agent whose body follows PRELUDE."""

    def write(body: str) -> list[str]:
        path = tmp_path / f"agent_{uuid.uuid4().hex[:8]}.py"
        path.write_text(PRELUDE + textwrap.dedent(body))
        return [PY, str(path)]

    return write


def new_run(prompt: str = "hello", **data: Any) -> RunInput:
    return RunInput(
        run_id=f"run-{uuid.uuid4().hex[:8]}", task_id="task-1", prompt=prompt, data=data
    )


OnEvent = Callable[[AgentEvent], Awaitable[None]]


async def collect(
    driver: CommandDriver, run: RunInput, on_event: OnEvent | None = None
) -> list[AgentEvent]:
    events = []
    async with asyncio.timeout(5):
        async for event in driver.execute(run):
            events.append(event)
            if on_event is not None:
                await on_event(event)
    assert [e.type for e in events].count("result") == 1
    assert events[-1].type == "result"
    return events


async def run_agent(
    driver: CommandDriver, bundle: AgentBundle, run: RunInput | None = None
) -> list[AgentEvent]:
    await driver.start(bundle)
    return await collect(driver, run or new_run())


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


# --- jsonl protocol, per-run ------------------------------------------------------------------


async def test_events_stream_in_order_and_end_with_the_result(driver, bundle_for, agent):
    argv = agent("""
        request = read()
        emit(type="message", text=json.dumps(request))
        emit(type="tool_call", name="search", args={"q": "x"})
        emit(type="log", level="debug", text="thinking")
        emit(type="usage", inputTokens=12, outputTokens=3)
        emit(type="progress", text="half", pct=50)
        emit(type="result", output="final")
    """)
    run = RunInput(run_id="r1", task_id="t1", prompt="do it", data={"k": [1]}, attempt=2)
    events = await run_agent(driver, bundle_for(argv), run)

    assert [e.type for e in events] == [
        "message", "tool_call", "log", "usage", "progress", "result"
    ]  # fmt: skip
    assert json.loads(events[0].data["text"]) == {
        "type": "input", "runId": "r1", "taskId": "t1", "attempt": 2, "prompt": "do it",
        "data": {"k": [1]},
    }  # fmt: skip
    assert events[1].data == {"name": "search", "args": {"q": "x"}}
    assert events[2].data == {"level": "debug", "text": "thinking"}
    assert events[3].data == {"inputTokens": 12, "outputTokens": 3}
    assert events[4].data == {"text": "half", "pct": 50}
    assert events[5].data == {"status": "succeeded", "output": "final"}


async def test_lines_that_are_not_events_become_stdout_logs(driver, bundle_for, agent):
    argv = agent("""
        read()
        print("plain words", flush=True)
        print('{"type": "dance"}', flush=True)
        print('[1, 2]', flush=True)
        print('{"type": "message", "text": 5}', flush=True)
        print('{"type": "progress", "pct": NaN}', flush=True)
        emit(type="message", text="ok")
    """)
    events = await run_agent(driver, bundle_for(argv))

    logs = [e.data for e in events if e.type == "log"]
    assert logs == [
        {"level": "stdout", "text": text}
        for text in [
            "plain words",
            '{"type": "dance"}',
            "[1, 2]",
            '{"type": "message", "text": 5}',
            '{"type": "progress", "pct": NaN}',
        ]
    ]
    assert events[-1].data == {"status": "succeeded", "output": "ok"}


async def test_stderr_lines_become_logs_and_long_lines_are_cut(driver, bundle_for, agent):
    argv = agent("""
        read()
        print("warming up", file=sys.stderr, flush=True)
        print("x" * 200_000, file=sys.stderr, flush=True)
        emit(type="result", output="done")
    """)
    events = await run_agent(driver, bundle_for(argv))

    logs = [e.data for e in events if e.type == "log"]
    assert logs[0] == {"level": "stderr", "text": "warming up"}
    assert logs[1]["level"] == "stderr"
    assert 64 * 1024 <= len(logs[1]["text"]) < 65 * 1024
    assert logs[1]["text"].endswith("[truncated]")
    assert events[-1].data == {"status": "succeeded", "output": "done"}


async def test_exit_zero_without_a_result_succeeds_with_the_messages(driver, bundle_for, agent):
    argv = agent("""
        read()
        emit(type="message", text="Hello, ")
        emit(type="message", text="world")
    """)
    events = await run_agent(driver, bundle_for(argv))
    assert events[-1].data == {"status": "succeeded", "output": "Hello, world"}


async def test_a_result_without_output_takes_the_messages(driver, bundle_for, agent):
    argv = agent("""
        read()
        emit(type="message", text="all ")
        emit(type="message", text="of it")
        emit(type="result")
    """)
    events = await run_agent(driver, bundle_for(argv))
    assert events[-1].data == {"status": "succeeded", "output": "all of it"}


async def test_nonzero_exit_fails_with_the_code_and_stderr(driver, bundle_for, agent):
    argv = agent("""
        read()
        print("cannot reach the model", file=sys.stderr, flush=True)
        sys.exit(3)
    """)
    result = (await run_agent(driver, bundle_for(argv)))[-1].data

    assert result["status"] == "failed"
    assert result["failureKind"] == "agent-exited"
    assert "exited with code 3" in result["error"]
    assert "cannot reach the model" in result["error"]


async def test_a_malformed_result_is_invalid_output(driver, bundle_for, agent):
    argv = agent("""
        read()
        emit(type="result", status="done", output="?")
    """)
    result = (await run_agent(driver, bundle_for(argv)))[-1].data
    assert result["failureKind"] == "invalid-output"
    assert "'status' must be 'succeeded' or 'failed'" in result["error"]


async def test_a_failed_result_from_the_agent_is_kept(driver, bundle_for, agent):
    argv = agent("""
        read()
        emit(type="result", status="failed", error="the repo is archived")
        sys.exit(1)
    """)
    result = (await run_agent(driver, bundle_for(argv)))[-1].data
    assert result == {
        "status": "failed", "failureKind": "agent-error", "error": "the repo is archived"
    }  # fmt: skip


async def test_a_program_that_lingers_after_its_result_is_ended(driver, bundle_for, agent):
    argv = agent("""
        read()
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        emit(type="result", output="done")
        emit(type="message", text="still here")
        time.sleep(30)
    """)
    started = time.monotonic()
    events = await run_agent(driver, bundle_for(argv))

    assert time.monotonic() - started < 2.5  # exit_wait 0.5 + grace 0.5, plus start-up
    assert events[-2].data == {
        "level": "stdout",
        "text": '{"type": "message", "text": "still here"}',
    }
    assert events[-1].data == {"status": "succeeded", "output": "done"}


async def test_steer_reaches_the_program(driver, bundle_for, agent):
    argv = agent("""
        read()
        emit(type="progress", text="waiting for a steer")
        steer = json.loads(sys.stdin.readline())
        emit(type="steer", message=steer["message"])
        emit(type="result", output="went " + steer["message"])
    """)
    await driver.start(bundle_for(argv))
    run = new_run()

    async def steer_on_progress(event: AgentEvent) -> None:
        if event.type == "progress":
            await driver.steer(run.run_id, "left")

    events = await collect(driver, run, steer_on_progress)
    assert [e.type for e in events] == ["progress", "steer", "result"]
    assert events[1].data == {"message": "left"}
    assert events[2].data["output"] == "went left"
    with pytest.raises(NotFound):
        await driver.steer(run.run_id, "too late")


async def test_cancel_ends_the_run_and_the_program(driver, bundle_for, agent):
    argv = agent("""
        read()
        emit(type="message", text=str(os.getpid()))
        time.sleep(30)
    """)
    await driver.start(bundle_for(argv))
    run = new_run()
    pids: list[int] = []

    async def cancel_on_message(event: AgentEvent) -> None:
        if event.type == "message":
            pids.append(int(event.data["text"]))
            await driver.cancel(run.run_id, grace=1.0)
            await driver.cancel(run.run_id, grace=1.0)  # idempotent

    started = time.monotonic()
    events = await collect(driver, run, cancel_on_message)

    assert time.monotonic() - started < 1.5  # sleep dies of SIGTERM: no need to wait for grace
    assert events[-1].data == {
        "status": "failed", "failureKind": "cancelled", "error": "the run was cancelled"
    }  # fmt: skip
    assert pid_gone(pids[0])
    await driver.cancel(run.run_id)  # finished: a no-op
    await driver.cancel("never-heard-of-it")


async def test_a_program_ignoring_sigterm_is_killed_after_grace(driver, bundle_for, agent):
    argv = agent("""
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        read()
        emit(type="message", text=str(os.getpid()))
        time.sleep(30)
    """)
    await driver.start(bundle_for(argv))
    run = new_run()
    timing: dict[str, float] = {}

    async def cancel_on_message(event: AgentEvent) -> None:
        if event.type == "message":
            timing["pid"] = int(event.data["text"])
            started = time.monotonic()
            await driver.cancel(run.run_id, grace=0.5)
            timing["cancel"] = time.monotonic() - started

    events = await collect(driver, run, cancel_on_message)
    assert 0.4 < timing["cancel"] < 1.5
    assert events[-1].data["failureKind"] == "cancelled"
    assert pid_gone(int(timing["pid"]))


async def test_a_program_that_closes_stdout_can_still_be_cancelled(driver, bundle_for, agent):
    argv = agent("""
        read()
        emit(type="message", text="closing stdout")
        os.close(1)
        time.sleep(30)
    """)
    await driver.start(bundle_for(argv))
    run = new_run()

    async def cancel_later(event: AgentEvent) -> None:
        await asyncio.sleep(0.2)
        await driver.cancel(run.run_id, grace=0.5)

    events = await collect(driver, run, cancel_later)
    assert events[-1].data["failureKind"] == "cancelled"


async def test_output_held_open_by_a_leftover_child_does_not_hang_the_run(driver, bundle_for):
    # The shell exits at once; its background sleep keeps stdout open and is killed by the driver.
    argv = ["sh", "-c", "sleep 30 & echo started"]
    started = time.monotonic()
    events = await run_agent(driver, bundle_for(argv))
    assert time.monotonic() - started < 2.0
    assert events[0].data == {"level": "stdout", "text": "started"}
    assert events[-1].data == {"status": "succeeded", "output": ""}


async def test_stop_ends_runs_in_flight(driver, bundle_for, agent):
    argv = agent("""
        read()
        emit(type="message", text="working")
        time.sleep(30)
    """)
    await driver.start(bundle_for(argv))

    async def stop_on_message(event: AgentEvent) -> None:
        await driver.stop(grace=0.5)

    events = await collect(driver, new_run(), stop_on_message)
    assert events[-1].data["failureKind"] == "agent-exited"
    assert "stopped" in events[-1].data["error"]
    assert not await driver.ready()


# --- text protocol ----------------------------------------------------------------------------


async def test_text_protocol_sends_the_prompt_and_reads_lines(driver, bundle_for):
    bundle = bundle_for(["sh", "-c", "tr a-z A-Z"], protocol="text")
    events = await run_agent(driver, bundle, new_run("hello\nworld"))

    assert [e.data for e in events[:-1]] == [{"text": "HELLO"}, {"text": "WORLD"}]
    assert events[-1].data == {"status": "succeeded", "output": "HELLO\nWORLD"}


async def test_text_protocol_nonzero_exit_fails(driver, bundle_for):
    bundle = bundle_for(["sh", "-c", "cat; echo oops >&2; exit 4"], protocol="text")
    result = (await run_agent(driver, bundle))[-1].data
    assert result["failureKind"] == "agent-exited"
    assert "exited with code 4" in result["error"]
    assert "oops" in result["error"]


async def test_text_protocol_programs_cannot_be_steered(driver, bundle_for):
    bundle = bundle_for(["sh", "-c", 'read line; echo "got $line"; sleep 30'], protocol="text")
    await driver.start(bundle)
    run = new_run()

    async def steer_then_cancel(event: AgentEvent) -> None:
        with pytest.raises(InvalidInput, match="text protocol"):
            await driver.steer(run.run_id, "faster")
        await driver.cancel(run.run_id, grace=0.5)

    events = await collect(driver, run, steer_then_cancel)
    assert events[0].data == {"text": "got hello"}
    assert events[-1].data["failureKind"] == "cancelled"


# --- long-lived mode --------------------------------------------------------------------------

LONG_LIVED = """
    print("ready for work", flush=True)  # names no run: goes to the runs in flight as a log
    for line in sys.stdin:
        command = json.loads(line)
        run_id = command.get("runId")
        if command["type"] == "input":
            prompt = command["prompt"]
            if prompt == "die":
                print("going down", file=sys.stderr, flush=True)
                sys.exit(5)
            emit(type="progress", runId=run_id, text="waiting for " + prompt)
        elif command["type"] == "steer":
            emit(type="steer", runId=run_id, message=command["message"])
            emit(type="message", runId=run_id, text="steered ")
            emit(type="message", runId=run_id, text=command["message"])
            emit(type="result", runId=run_id)
        elif command["type"] == "cancel" and command["runId"] != "stubborn":
            emit(type="result", runId=run_id, status="failed", error="dropped")
"""


async def test_long_lived_routes_concurrent_runs(driver, bundle_for, agent):
    await driver.start(bundle_for(agent(LONG_LIVED), mode="long-lived"))
    assert await driver.ready()
    run_a, run_b = new_run("a"), new_run("b")
    waiting = {run_a.run_id: asyncio.Event(), run_b.run_id: asyncio.Event()}

    def on_progress(run: RunInput) -> OnEvent:
        async def note(event: AgentEvent) -> None:
            if event.type == "progress":
                waiting[run.run_id].set()

        return note

    task_a = asyncio.create_task(collect(driver, run_a, on_progress(run_a)))
    task_b = asyncio.create_task(collect(driver, run_b, on_progress(run_b)))
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in waiting.values())), 3)
    await driver.steer(run_b.run_id, "bee")
    events_b = await task_b
    assert not task_a.done()  # a is still in flight while b finished
    await driver.steer(run_a.run_id, "ay")
    events_a = await task_a

    assert events_a[-1].data == {"status": "succeeded", "output": "steered ay"}
    assert events_b[-1].data == {"status": "succeeded", "output": "steered bee"}
    assert {"text": "waiting for a"} in [e.data for e in events_a]
    assert all("b" not in str(e.data.get("text", "")) for e in events_a if e.type == "progress")
    assert await driver.ready()


async def test_long_lived_program_death_fails_runs_in_flight(driver, bundle_for, agent):
    bundle = bundle_for(agent(LONG_LIVED), mode="long-lived")
    await driver.start(bundle)
    waiting = asyncio.Event()

    async def note(event: AgentEvent) -> None:
        if event.type == "progress":
            waiting.set()

    in_flight = asyncio.create_task(collect(driver, new_run("slow"), note))
    await asyncio.wait_for(waiting.wait(), 3)
    killer = await collect(driver, new_run("die"))
    victim = await in_flight

    for events in (killer, victim):
        result = events[-1].data
        assert result["failureKind"] == "agent-exited"
        assert "exited with code 5" in result["error"]
        assert "going down" in result["error"]
    assert not await driver.ready()
    assert (await collect(driver, new_run()))[-1].data["failureKind"] == "agent-exited"

    await driver.start(bundle)  # the runner restarts the program
    assert await driver.ready()
    run = new_run("again")

    async def steer(event: AgentEvent) -> None:
        if event.type == "progress":
            await driver.steer(run.run_id, "fine")

    assert (await collect(driver, run, steer))[-1].data["output"] == "steered fine"


async def test_long_lived_cancel_ends_only_that_run(driver, bundle_for, agent):
    await driver.start(bundle_for(agent(LONG_LIVED), mode="long-lived"))

    async def cancel_on_progress(run: RunInput) -> list[AgentEvent]:
        async def cancel(event: AgentEvent) -> None:
            if event.type == "progress":
                await driver.cancel(run.run_id, grace=0.5)

        return await collect(driver, run, cancel)

    answered = await cancel_on_progress(new_run("polite"))
    started = time.monotonic()
    ignored = await cancel_on_progress(RunInput(run_id="stubborn", task_id="t", prompt="x"))

    assert answered[-1].data["failureKind"] == "cancelled"
    assert ignored[-1].data["failureKind"] == "cancelled"
    assert 0.4 < time.monotonic() - started < 1.5
    assert await driver.ready()


async def test_long_lived_program_that_closes_stdout_is_replaced(driver, bundle_for, agent):
    argv = agent("""
        command = read()
        emit(type="progress", runId=command["runId"], text="closing")
        os.close(1)
        time.sleep(30)
    """)
    await driver.start(bundle_for(argv, mode="long-lived"))
    result = (await collect(driver, new_run()))[-1].data

    assert result["failureKind"] == "agent-exited"
    assert "closed its stdout" in result["error"]
    assert not await driver.ready()


async def test_stop_ends_long_lived_runs_in_flight(driver, bundle_for, agent):
    await driver.start(bundle_for(agent(LONG_LIVED), mode="long-lived"))

    async def stop_on_progress(event: AgentEvent) -> None:
        if event.type == "progress":
            await driver.stop(grace=0.5)

    result = (await collect(driver, new_run(), stop_on_progress))[-1].data
    assert result["failureKind"] == "agent-exited"
    assert "stopped" in result["error"]
    assert not await driver.ready()


async def test_long_lived_needs_the_jsonl_protocol(driver, bundle_for):
    with pytest.raises(PermanentError, match="long-lived"):
        await driver.start(bundle_for(["cat"], mode="long-lived", protocol="text"))


async def test_a_flood_of_output_arrives_whole(driver, bundle_for):
    argv = [PY, "-c", "for _ in range(100): print('x' * 100_000)"]
    events = await run_agent(driver, bundle_for(argv, protocol="text"))
    messages = [e for e in events if e.type == "message"]
    assert len(messages) == 100
    assert all(len(e.data["text"]) == 100_000 for e in messages)
    assert events[-1].data["status"] == "succeeded"


RUNNER = """
import asyncio, sys
from pathlib import Path
from clawfleet.adapters.base import AgentBundle, RunInput
from clawfleet.adapters.command import CommandDriver

AGENT = "import os, time; print(os.getpid(), flush=True); time.sleep(30)"

async def main() -> None:
    driver = CommandDriver()
    await driver.start(AgentBundle(
        adapter="command", command=[sys.executable, "-c", AGENT], workdir=Path.cwd(),
        config={"protocol": "text"}, env={sys.argv[1]: sys.argv[2]},
    ))
    async for event in driver.execute(RunInput(run_id="r", task_id="t", prompt="")):
        print(event.data.get("text"), flush=True)

asyncio.run(main())
"""


def test_the_program_dies_with_a_killed_runner(tmp_path: Path, mark: str) -> None:
    script = tmp_path / "runner.py"
    script.write_text(RUNNER)
    runner = subprocess.Popen([PY, str(script), MARK, mark], stdout=subprocess.PIPE, cwd=tmp_path)
    try:
        assert runner.stdout is not None
        agent_pid = int(runner.stdout.readline())
        runner.send_signal(signal.SIGKILL)
        runner.wait(5)
        deadline = time.monotonic() + 2
        while not pid_gone(agent_pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert pid_gone(agent_pid)
    finally:
        runner.kill()
        runner.wait(5)
        if runner.stdout is not None:
            runner.stdout.close()


# --- environment and secrets ------------------------------------------------------------------


async def test_the_program_gets_a_minimal_env(driver, bundle_for, agent):
    argv = agent("""
        read()
        emit(type="result", output=dict(os.environ))
    """)
    run = RunInput(run_id="r-env", task_id="t-env", prompt="", attempt=3)
    env = (await run_agent(driver, bundle_for(argv, env={"GREETING": "hi"}), run))[-1].data

    assert env["output"]["GREETING"] == "hi"
    assert env["output"]["CLAWFLEET_RUN_ID"] == "r-env"
    assert env["output"]["CLAWFLEET_TASK_ID"] == "t-env"
    assert env["output"]["CLAWFLEET_ATTEMPT"] == "3"
    assert env["output"]["PATH"]
    assert "PYTEST_CURRENT_TEST" not in env["output"]  # the runner's own env stays with it


async def test_bundle_env_values_never_appear_in_driver_output(driver, bundle_for, agent, tmp_path):
    secret = "sk-live-" + uuid.uuid4().hex
    secret_dir = f"/opt/{secret}"
    texts: list[str] = []
    failing = agent("""
        read()
        print("no luck", file=sys.stderr, flush=True)
        emit(type="result", status="bogus")
        sys.exit(1)
    """)
    bundle = bundle_for(failing, env={"API_TOKEN": secret})
    texts.append(repr(bundle))
    texts += [repr(e) for e in await run_agent(driver, bundle)]
    texts += [repr(e) for e in await run_agent(driver, bundle_for([PY, "-c", "1/0"]))]

    with pytest.raises(PermanentError) as missing:
        await driver.start(bundle_for(["no-such-agent"], env={"PATH": secret_dir}))
    texts.append(str(missing.value))
    script = tmp_path / "vanishing.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    await driver.start(bundle_for([str(script)], env={"TOKEN": secret}))
    script.unlink()
    texts += [repr(e) for e in await collect(driver, new_run())]

    assert all(secret not in text for text in texts)


# --- starting -----------------------------------------------------------------------------------


async def test_a_missing_program_fails_start_permanently(driver, bundle_for):
    with pytest.raises(PermanentError, match="'no-such-agent-xyz' was not found"):
        await driver.start(bundle_for(["no-such-agent-xyz"]))
    assert not await driver.ready()


async def test_a_program_gone_since_start_fails_the_run(driver, bundle_for, tmp_path):
    script = tmp_path / "agent.sh"
    script.write_text("#!/bin/sh\ncat\n")
    script.chmod(0o755)
    await driver.start(bundle_for(["./agent.sh"]))  # relative to the working directory
    script.unlink()

    result = (await collect(driver, new_run()))[-1].data
    assert result["failureKind"] == "agent-exited"
    assert "does not exist or is not executable" in result["error"]


async def test_start_refuses_a_bad_bundle(driver, bundle_for, tmp_path):
    with pytest.raises(PermanentError, match=r"config\.protocol"):
        await driver.start(bundle_for(["cat"], protocol="xml"))
    with pytest.raises(PermanentError, match="cannot run adapter 'openclaw'"):
        await driver.start(AgentBundle(adapter="openclaw", command=["cat"], workdir=tmp_path))


async def test_execute_before_start_fails_the_run_and_steer_finds_nothing(driver):
    result = (await collect(driver, new_run()))[-1].data
    assert result["failureKind"] == "agent-exited"
    assert "not started" in result["error"]
    with pytest.raises(NotFound):
        await driver.steer("nope", "hello")


async def test_a_run_id_executes_once_at_a_time(driver, bundle_for):
    await driver.start(bundle_for(["sh", "-c", "sleep 30"]))
    run = new_run()
    first = driver.execute(run)
    pending = asyncio.create_task(anext(first))
    await asyncio.sleep(0.1)
    with pytest.raises(Conflict):
        await anext(driver.execute(run))
    await driver.cancel(run.run_id, grace=0.5)
    assert (await pending).data["failureKind"] == "cancelled"
    await first.aclose()


def test_validate_command_config() -> None:
    assert validate_command_config({}) == []
    assert validate_command_config({"protocol": "text", "mode": "per-run"}) == []
    assert validate_command_config({"protocol": "jsonl", "mode": "long-lived"}) == []
    assert validate_command_config({"protocl": "text", "mode": "forever"}) == [
        "config.protocl is not a command adapter setting; the known settings are mode, protocol",
        "config.mode must be 'per-run' or 'long-lived', got 'forever'",
    ]
    assert validate_command_config({"protocol": "text", "mode": "long-lived"}) == [
        "config.mode 'long-lived' needs config.protocol 'jsonl': "
        "plain text cannot say which run a line belongs to"
    ]


# --- the protocol, line by line -----------------------------------------------------------------


def test_line_splitter_handles_partial_long_and_crlf_lines() -> None:
    splitter = LineSplitter(limit=8)
    assert splitter.feed(b"ab") == []
    assert splitter.feed(b"c\r\n0123456789abc") == ["abc"]
    assert splitter.feed(b"def\nlast") == ["01234567 …[truncated]"]
    assert splitter.close() == ["last"]
    assert LineSplitter(limit=8).feed("é\n".encode()[:1] + b"\n") == ["\ufffd"]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"type": "usage", "inputTokens": 5}', ("usage", {"inputTokens": 5, "outputTokens": 0})),
        ('{"type": "usage", "inputTokens": true}', ("log", None)),
        ('{"type": "progress", "pct": 101}', ("log", None)),
        ('{"type": "steer"}', ("steer", {})),
        ('{"type": "tool_call", "name": "x"}', ("tool_call", {"name": "x", "args": {}})),
        ('{"type": "log", "text": "t"}', ("log", {"level": "info", "text": "t"})),
        (
            '{"type": "result", "status": "failed"}',
            ("result", {"status": "failed", "failureKind": "invalid-output"}),
        ),
        ('{"type": "result", "output": {"n": 1}}', ("result", {"status": "succeeded"})),
    ],
)
def test_parse_event_line(line: str, expected: tuple[str, dict[str, Any] | None]) -> None:
    _, event = parse_event_line(line)
    kind, data = expected
    assert event.type == kind
    if data is None:
        assert event.data == {"level": "stdout", "text": line}
    else:
        assert data.items() <= dict(event.data).items()


def test_parse_event_line_returns_the_run_id() -> None:
    run_id, event = parse_event_line('{"type": "message", "runId": "r9", "text": "hi"}')
    assert (run_id, event.data) == ("r9", {"text": "hi"})


# --- the example agents -------------------------------------------------------------------------


async def test_the_staged_example_agent_reports_progress_and_takes_a_steer(driver, bundle_for):
    await driver.start(bundle_for([PY, str(EXAMPLES / "staged_agent.py")]))
    run = new_run("ship it", stages=3, stageSeconds=0.2)

    async def steer_once(event: AgentEvent) -> None:
        if event.type == "progress" and event.data.get("pct") == 0:
            await driver.steer(run.run_id, "be careful")

    events = await collect(driver, run, steer_once)
    kinds = [e.type for e in events]
    assert kinds.count("progress") == 4
    assert kinds.count("tool_call") == 3
    assert {"message": "be careful"} in [e.data for e in events if e.type == "steer"]
    assert {"inputTokens": 2, "outputTokens": 30} in [e.data for e in events]
    assert events[-1].data == {
        "status": "succeeded", "output": "Finished 3 stages for: ship it (steered: be careful)"
    }  # fmt: skip


async def test_the_staged_example_agent_stops_promptly_on_cancel(driver, bundle_for):
    await driver.start(bundle_for([PY, str(EXAMPLES / "staged_agent.py")]))
    run = new_run("long job", stages=10, stageSeconds=1)
    timing: dict[str, float] = {}

    async def cancel_on_progress(event: AgentEvent) -> None:
        if event.type == "progress" and "cancel" not in timing:
            timing["cancel"] = time.monotonic()
            await driver.cancel(run.run_id, grace=3.0)
            timing["cancel"] = time.monotonic() - timing["cancel"]

    events = await collect(driver, run, cancel_on_progress)
    assert timing["cancel"] < 1.0  # it exited on SIGTERM; the driver never had to kill it
    assert events[-1].data["failureKind"] == "cancelled"


async def test_the_shell_example_agent_runs_the_prompt(driver, bundle_for):
    bundle = bundle_for(["sh", str(EXAMPLES / "shell_agent.sh")], protocol="text")
    events = await run_agent(driver, bundle, new_run("echo one; echo two"))
    assert [e.data for e in events[:-1]] == [{"text": "one"}, {"text": "two"}]
    assert events[-1].data == {"status": "succeeded", "output": "one\ntwo"}

    failed = (await collect(driver, new_run("echo bad >&2; exit 7")))[-1].data
    assert failed["failureKind"] == "agent-exited"
    assert "exited with code 7" in failed["error"]
    assert "bad" in failed["error"]
