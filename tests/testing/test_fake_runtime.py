"""The FakeRuntime passes the same contract as every runtime, and its test controls work."""

from __future__ import annotations

import asyncio

import pytest

from clawfleet.core.errors import PermanentError, TemporaryError
from clawfleet.runtimes.base import Handle, LaunchSpec, Runtime, State
from clawfleet.testing.clock import FakeClock
from clawfleet.testing.fake_runtime import FakeRuntime
from clawfleet.testing.runtime_contract import RuntimeContract, collect


class TestFakeRuntime(RuntimeContract):
    @pytest.fixture
    def runtime(self) -> FakeRuntime:
        return FakeRuntime()

    def persisted_metadata(self, runtime: Runtime, handle: Handle) -> list[str]:
        assert isinstance(runtime, FakeRuntime)
        return runtime.metadata(handle)


RUNNER = ["clawfleet-runner"]


async def test_a_runner_command_runs_until_stopped_in_fake_time() -> None:
    clock = FakeClock()
    runtime = FakeRuntime(clock=clock)
    handle = await runtime.launch(LaunchSpec("i-1", RUNNER))
    clock.advance(3600)
    assert (await runtime.inspect(handle)).state is State.RUNNING
    observation = await runtime.stop(handle, grace=30)  # it ends at SIGTERM: no wait
    assert observation.exit_code == 143
    assert observation.finished_at == clock.now()
    assert runtime.stopped == [handle]


async def test_a_grace_period_passes_on_the_clock() -> None:
    clock = FakeClock()
    runtime = FakeRuntime(clock=clock)
    handle = await runtime.launch(LaunchSpec("i-1", ["sh", "-c", "trap '' TERM; sleep 999"]))
    await clock.settle()  # the program has set its trap
    stopping = asyncio.ensure_future(runtime.stop(handle, grace=10))
    await clock.run_for(9)
    assert not stopping.done()
    await clock.run_for(1)
    assert (await stopping).exit_code == 137


async def test_exit_ends_an_instance_with_a_code() -> None:
    runtime = FakeRuntime()
    handle = await runtime.launch(LaunchSpec("i-1", RUNNER))
    runtime.exit("i-1", 7)
    observation = await runtime.inspect(handle)
    assert (observation.state, observation.exit_code) == (State.EXITED, 7)
    assert runtime.running() == []
    again = await runtime.launch(LaunchSpec("i-1", RUNNER))  # a relaunch is a new handle
    assert again != handle
    assert (await runtime.inspect(handle)).state is State.MISSING
    assert runtime.running() == ["i-1"]


@pytest.mark.parametrize("error", [PermanentError("no such program"), TemporaryError("busy")])
async def test_launches_can_be_made_to_fail(error: Exception) -> None:
    runtime = FakeRuntime()
    runtime.fail_launches(error, times=2)  # type: ignore[arg-type]
    for _ in range(2):
        with pytest.raises(type(error)):
            await runtime.launch(LaunchSpec("i-1", RUNNER))
    await runtime.launch(LaunchSpec("i-1", RUNNER))
    assert [spec.instance_id for spec in runtime.launched] == ["i-1", "i-1", "i-1"]
    assert runtime.running() == ["i-1"]


async def test_write_adds_to_the_log() -> None:
    runtime = FakeRuntime()
    handle = await runtime.launch(LaunchSpec("i-1", RUNNER))
    runtime.write("i-1", "hello")
    assert await collect(runtime.logs(handle)) == ["hello"]


@pytest.mark.parametrize(
    "script",
    ["cat /etc/passwd", "echo a | tr a b", "trap 'echo bye' TERM", "while true; do :; done"],
)
async def test_scripts_outside_the_subset_are_refused_at_launch(script: str) -> None:
    runtime = FakeRuntime()
    with pytest.raises(PermanentError, match="fake runtime"):
        await runtime.launch(LaunchSpec("i-1", ["sh", "-c", script]))
