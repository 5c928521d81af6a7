"""The transition rules as from/to matrices: every pair is either allowed or refused."""

from __future__ import annotations

import itertools

import pytest

from clawfleet.domain.lifecycle import (
    TASK_TERMINAL,
    FailureKind,
    InstancePhase,
    InvalidTransition,
    RunState,
    TaskState,
    check_instance,
    check_run,
    check_task,
    requeue_delay,
    retry_delay,
)

T = TaskState
TASK_ALLOWED = {
    (T.PENDING, T.CLAIMED), (T.PENDING, T.CANCELLED), (T.PENDING, T.BLOCKED),
    (T.PENDING, T.FAILED),
    (T.BLOCKED, T.PENDING), (T.BLOCKED, T.CANCELLED),
    (T.CLAIMED, T.WORKING), (T.CLAIMED, T.PENDING), (T.CLAIMED, T.DONE), (T.CLAIMED, T.REVIEW),
    (T.CLAIMED, T.FAILED), (T.CLAIMED, T.CANCELLED),
    (T.WORKING, T.PENDING), (T.WORKING, T.DONE), (T.WORKING, T.REVIEW), (T.WORKING, T.FAILED),
    (T.WORKING, T.CANCELLED),
    (T.REVIEW, T.DONE), (T.REVIEW, T.PENDING), (T.REVIEW, T.CANCELLED),
}  # fmt: skip


@pytest.mark.parametrize(("source", "target"), list(itertools.product(TaskState, TaskState)))
def test_task_matrix(source: TaskState, target: TaskState) -> None:
    if (source, target) in TASK_ALLOWED:
        assert check_task(source, target) is target
    else:
        with pytest.raises(InvalidTransition):
            check_task(source, target)


@pytest.mark.parametrize(("source", "target"), list(itertools.product(RunState, RunState)))
def test_run_matrix(source: RunState, target: RunState) -> None:
    allowed = source is RunState.RUNNING and target is not RunState.RUNNING
    if allowed:
        assert check_run(source, target) is target
    else:
        with pytest.raises(InvalidTransition):
            check_run(source, target)


P = InstancePhase
INSTANCE_ALLOWED = {
    (P.PENDING, P.STARTING), (P.PENDING, P.STOPPED), (P.PENDING, P.CRASH_LOOP),
    (P.STARTING, P.RUNNING), (P.STARTING, P.STOPPING), (P.STARTING, P.STOPPED),
    (P.STARTING, P.CRASH_LOOP), (P.STARTING, P.LOST),
    (P.RUNNING, P.STOPPING), (P.RUNNING, P.STOPPED), (P.RUNNING, P.CRASH_LOOP),
    (P.RUNNING, P.LOST), (P.RUNNING, P.STARTING),
    (P.CRASH_LOOP, P.STARTING), (P.CRASH_LOOP, P.STOPPED), (P.CRASH_LOOP, P.STOPPING),
    (P.LOST, P.STARTING), (P.LOST, P.STOPPING), (P.LOST, P.STOPPED), (P.LOST, P.RUNNING),
    (P.STOPPING, P.STOPPED),
}  # fmt: skip


@pytest.mark.parametrize(("source", "target"), list(itertools.product(P, P)))
def test_instance_matrix(source: InstancePhase, target: InstancePhase) -> None:
    if source is target or (source, target) in INSTANCE_ALLOWED:
        assert check_instance(source, target) is target
    else:
        with pytest.raises(InvalidTransition):
            check_instance(source, target)


def test_terminal_task_states_go_nowhere() -> None:
    for state in TASK_TERMINAL:
        for target in TaskState:
            with pytest.raises(InvalidTransition):
                check_task(state, target)


def test_a_lost_runner_is_retried_at_once_other_failures_back_off() -> None:
    assert requeue_delay(FailureKind.RUNNER_LOST, 2, 5.0) == 0.0
    assert requeue_delay(FailureKind.TIMEOUT, 2, 5.0) == 10.0


def test_retry_delay_is_exponential_and_capped() -> None:
    assert [retry_delay(a, 1.0) for a in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert retry_delay(20, 1.0) == 300.0
