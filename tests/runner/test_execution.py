"""One run on the runner keeps time on the runner's clock: its event batches and its timeout
run in fake time (the control plane is a fake of our own RunnerClient seam)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

from clawfleet.adapters.base import AgentBundle, AgentEvent, RunInput
from clawfleet.client.runner import RunnerClient
from clawfleet.runner.execution import COALESCE_SECONDS, RunExecution
from clawfleet.schemas.runner import CompleteIn
from clawfleet.testing.clock import FakeClock


class Recorder:
    """The control plane's side of one run: event batches and the completion."""

    def __init__(self) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.completion: dict[str, Any] | None = None

    async def events(self, run_id: str, events: list[dict[str, Any]]) -> None:
        self.batches.append(list(events))

    async def complete(self, run_id: str, result: dict[str, Any]) -> dict[str, Any]:
        self.completion = result
        return {}


class SlowProgram:
    """Says two things at once, then works until cancelled."""

    def __init__(self) -> None:
        self.cancelled = asyncio.Event()

    async def start(self, bundle: AgentBundle) -> None:
        pass

    async def ready(self) -> bool:
        return True

    async def execute(self, run: RunInput) -> AsyncIterator[AgentEvent]:
        yield AgentEvent("message", {"text": "thinking"})
        yield AgentEvent("progress", {"text": "step 1", "pct": 10})
        await self.cancelled.wait()
        yield AgentEvent("result", {"status": "failed", "failureKind": "cancelled"})

    async def steer(self, run_id: str, message: str) -> None:
        pass

    async def cancel(self, run_id: str, grace: float = 3.0) -> None:
        self.cancelled.set()

    async def stop(self, grace: float = 5.0) -> None:
        pass


async def test_events_are_batched_and_the_timeout_fires_in_fake_time(clock: FakeClock) -> None:
    recorder = Recorder()
    claim = {"id": "r-1", "taskId": "t-1", "prompt": "go", "timeoutSeconds": 30}
    execution = RunExecution(cast(RunnerClient, recorder), SlowProgram(), claim, clock=clock)
    running = asyncio.ensure_future(execution.execute())
    await clock.settle()
    assert recorder.batches == []  # held for the coalescing delay
    await clock.run_for(COALESCE_SECONDS)
    assert [[event["type"] for event in batch] for batch in recorder.batches] == [
        ["message", "progress"]
    ]

    await clock.run_for(29.9)
    assert not running.done()
    await clock.run_for(0.1)
    await asyncio.wait_for(running, 5)
    assert recorder.completion is not None
    assert recorder.completion["failureKind"] == "timeout"
    assert recorder.completion["error"] == "the run exceeded its timeout of 30s"
    assert [event["type"] for event in recorder.completion["events"]] == ["result"]


def _nested(levels: int) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for _ in range(levels):
        document = {"x": document}
    return document


class HostileProgram(SlowProgram):
    """Says things the control plane refuses: JSON nested 600 deep, a NUL character."""

    async def execute(self, run: RunInput) -> AsyncIterator[AgentEvent]:
        yield AgentEvent("message", {"text": "a\x00b"})
        yield AgentEvent("progress", _nested(600))
        yield AgentEvent("result", {"status": "succeeded", "output": _nested(600)})


async def test_what_the_control_plane_would_refuse_fails_the_run_not_the_runner(
    clock: FakeClock,
) -> None:
    recorder = Recorder()
    claim = {"id": "r-1", "taskId": "t-1", "prompt": "go"}
    execution = RunExecution(cast(RunnerClient, recorder), HostileProgram(), claim, clock=clock)
    await asyncio.wait_for(execution.execute(), 5)
    assert recorder.completion is not None
    # The server takes the completion (a 422 would stop the runner for good)...
    completion = CompleteIn.model_validate(recorder.completion)
    # ...and it says what was wrong instead of carrying it.
    assert completion.status == "failed" and completion.failure_kind == "invalid-output"
    assert completion.error is not None and "nested deeper than 32 levels" in completion.error
    dropped = [event.data for event in completion.events if event.type != "result"]
    assert all("dropped" in data for data in dropped) and len(dropped) == 2
