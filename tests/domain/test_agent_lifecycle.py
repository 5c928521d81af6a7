"""The agent rules as tables: how many instances an agent wants, and the phase it reports."""

from __future__ import annotations

import pytest

from clawfleet.domain.lifecycle import AgentPhase, AgentState, agent_phase, desired_instances

RUNNING, SLEEPING, STOPPED = AgentState.RUNNING, AgentState.SLEEPING, AgentState.STOPPED


@pytest.mark.parametrize(
    ("state", "replicas", "asleep", "desired"),
    [
        (RUNNING, 3, False, 3),
        (RUNNING, 0, False, 0),
        (RUNNING, 3, True, 0),  # idleTimeout put it to sleep
        (SLEEPING, 3, True, 0),
        (SLEEPING, 3, False, 3),  # woken by work
        (SLEEPING, 0, False, 1),  # woken by work, even with no replicas declared
        (STOPPED, 3, False, 0),
        (STOPPED, 3, True, 0),
    ],
)
def test_desired_instances(state: AgentState, replicas: int, asleep: bool, desired: int) -> None:
    assert desired_instances(state, replicas, asleep=asleep) == desired


@pytest.mark.parametrize(
    ("state", "asleep", "degraded", "ready", "desired", "phase"),
    [
        (RUNNING, False, False, 2, 2, AgentPhase.RUNNING),
        (RUNNING, False, False, 1, 2, AgentPhase.PENDING),
        (RUNNING, False, False, 0, 0, AgentPhase.RUNNING),
        (RUNNING, False, True, 2, 2, AgentPhase.DEGRADED),
        (RUNNING, True, True, 0, 0, AgentPhase.SLEEPING),
        (SLEEPING, True, False, 0, 0, AgentPhase.SLEEPING),
        (SLEEPING, False, False, 1, 1, AgentPhase.RUNNING),
        (STOPPED, False, True, 1, 0, AgentPhase.STOPPED),
    ],
)
def test_agent_phase(
    state: AgentState, asleep: bool, degraded: bool, ready: int, desired: int, phase: AgentPhase
) -> None:
    assert (
        agent_phase(state, asleep=asleep, degraded=degraded, ready=ready, desired=desired) is phase
    )
