"""The instance decision tree as a table: (stored instance, observation, agent, now) → action."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from clawfleet.controllers.agents import AgentControllerConfig
from clawfleet.controllers.instance_plan import (
    Action,
    AgentTarget,
    CrashLoop,
    Drain,
    Keep,
    Launch,
    MarkLost,
    Observed,
    Relaunch,
    Replace,
    ResetFailures,
    Restart,
    Stop,
    plan_instance,
)
from clawfleet.domain.instances import Instance, InstanceId
from clawfleet.domain.lifecycle import InstancePhase, StopRequest
from clawfleet.runtimes.base import Observation, State

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
LATER = NOW + timedelta(seconds=1)
TIMINGS = AgentControllerConfig(
    server_url="", runner_command=(), base_env={},
    lost_after=15, start_timeout=60, drain_timeout=30,
)  # fmt: skip
AGENT = AgentTarget(revision="rev-1", runtime="local")

PENDING, STARTING, RUNNING = InstancePhase.PENDING, InstancePhase.STARTING, InstancePhase.RUNNING
LOST, CRASH_LOOP, STOPPING = InstancePhase.LOST, InstancePhase.CRASH_LOOP, InstancePhase.STOPPING
UP = Observation(State.RUNNING)
EXITED = Observation(State.EXITED, exit_code=3)
GONE = Observation(State.MISSING)


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def instance(phase: InstancePhase, **values: Any) -> Instance:
    base = Instance(
        id=InstanceId("i-1"), name="a-00001", tenant="t", project="p", agent="a",
        agent_uid="uid-a", agent_generation=1, revision="rev-1", runtime="local", phase=phase,
        liveness="idle", handle={"ref": "1"}, token_id=None, restarts=0,
        consecutive_failures=0, backoff_until=None, last_error=None,
        stop_requested=StopRequest.NONE, heartbeat_at=ago(1), started_at=ago(100),
        stopped_at=None, created_at=ago(200), updated_at=ago(1),
    )  # fmt: skip
    return dataclasses.replace(base, **values)


# (case, instance, process, running runs, agent, expected)
TABLE: list[tuple[str, Instance, Observation | None, int, AgentTarget, Action]] = [
    ("healthy and current", instance(RUNNING), UP, 0, AGENT, Keep()),
    ("never launched", instance(PENDING, handle=None), None, 0, AGENT, Launch()),
    ("restart requested", instance(RUNNING, stop_requested=StopRequest.RESTART), UP, 0, AGENT,
     Restart()),
    ("restart requested, crash-looping", instance(CRASH_LOOP, backoff_until=LATER,
     stop_requested=StopRequest.RESTART), EXITED, 0, AGENT, Restart()),
    ("backoff running", instance(CRASH_LOOP, backoff_until=LATER), EXITED, 0, AGENT, Keep()),
    ("backoff over", instance(CRASH_LOOP, backoff_until=NOW), EXITED, 0, AGENT, Relaunch()),
    ("exited", instance(RUNNING), EXITED, 0, AGENT,
     CrashLoop("the runner exited (code 3)", 1.0, halt=False)),
    ("vanished", instance(STARTING), GONE, 0, AGENT,
     CrashLoop("the runner is gone", 1.0, halt=False)),
    ("third crash in a row", instance(RUNNING, consecutive_failures=2), EXITED, 0, AGENT,
     CrashLoop("the runner exited (code 3)", 4.0, halt=False)),
    ("backoff is capped", instance(RUNNING, consecutive_failures=30), EXITED, 0, AGENT,
     CrashLoop("the runner exited (code 3)", 60.0, halt=False)),
    ("starting in time", instance(STARTING, started_at=ago(59)), UP, 0, AGENT, Keep()),
    ("never registered", instance(STARTING, started_at=ago(61)), UP, 0, AGENT,
     CrashLoop("the runner did not register in time", 1.0, halt=True)),
    ("silent", instance(RUNNING, heartbeat_at=ago(16)), UP, 0, AGENT,
     MarkLost("no heartbeat for 16s")),
    ("silent, but within lost_after", instance(RUNNING, heartbeat_at=ago(14)), UP, 0, AGENT,
     Keep()),
    ("lost and still silent", instance(LOST, heartbeat_at=ago(17)), UP, 0, AGENT,
     Replace("Replaced", "heartbeats stopped", counts_as_restart=True)),
    ("healthy again after crashes", instance(RUNNING, consecutive_failures=3), UP, 0, AGENT,
     ResetFailures()),
    ("crashed recently, not yet healthy", instance(RUNNING, consecutive_failures=3,
     started_at=ago(5)), UP, 0, AGENT, Keep()),
    ("another revision, idle", instance(RUNNING, revision="rev-0"), UP, 0, AGENT,
     Replace("Updated", "what the agent runs changed", counts_as_restart=False)),
    ("another revision, busy", instance(RUNNING, revision="rev-0"), UP, 2, AGENT, Keep()),
    ("another revision, still starting", instance(STARTING, revision="rev-0", started_at=ago(5)),
     UP, 0, AGENT,
     Keep()),
    ("runtime changed", instance(RUNNING), UP, 0, AgentTarget("rev-1", "docker"),
     Stop("RuntimeChanged")),
    ("runtime unavailable", instance(RUNNING), UP, 0, AgentTarget("rev-1", None),
     Stop("RuntimeChanged")),
    ("stop requested, running", instance(RUNNING, stop_requested=StopRequest.STOP), UP, 1,
     AGENT, Drain()),
    ("stop requested, never launched", instance(PENDING, handle=None,
     stop_requested=StopRequest.STOP), None, 0, AGENT, Stop("Stopped")),
    ("stop requested, crash-looping", instance(CRASH_LOOP, stop_requested=StopRequest.STOP),
     EXITED, 0, AGENT, Stop("Stopped")),
    ("draining", instance(STOPPING, updated_at=ago(29)), UP, 1, AGENT, Keep()),
    ("drained: the runner exited", instance(STOPPING), EXITED, 0, AGENT, Stop("Stopped")),
    ("drain timed out", instance(STOPPING, updated_at=ago(31)), UP, 1, AGENT, Stop("Stopped")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("stored", "process", "runs", "agent", "expected"),
    [row[1:] for row in TABLE],
    ids=[row[0] for row in TABLE],
)
def test_plan_instance(
    stored: Instance, process: Observation | None, runs: int, agent: AgentTarget, expected: Action
) -> None:
    assert plan_instance(stored, Observed(process, runs), agent, NOW, TIMINGS) == expected
