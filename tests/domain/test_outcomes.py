"""The outcome rules as tables (Prefect's test_core_policy.py is the model): for each event and
each task situation, what the run and the task become."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from clawfleet.domain.lifecycle import (
    RETRYABLE,
    TASK_TERMINAL,
    CancelAction,
    FailureKind,
    InvalidTransition,
    Outcome,
    RunState,
    TaskState,
    on_cancel,
    on_claim,
    on_events,
    on_failure,
    on_no_candidates,
    on_success,
    reported_failure,
    would_retry,
)

RUN = "r-current"
T, R, K = TaskState, RunState, FailureKind


@dataclass(frozen=True)
class Facts:
    state: TaskState = TaskState.WORKING
    attempts: int = 1
    max_attempts: int = 3
    cancel_requested: bool = False
    current_run: str | None = RUN


@pytest.mark.parametrize(
    ("kind", "facts", "has_candidates", "expected"),
    [
        # retryable kinds go back to the queue while attempts remain
        *[(kind, Facts(), True, Outcome(R.FAILED, T.PENDING, kind, "boom", True))
          for kind in sorted(RETRYABLE)],
        # ... from claimed too (the runner died before any event)
        (K.RUNNER_LOST, Facts(state=T.CLAIMED), True,
         Outcome(R.FAILED, T.PENDING, K.RUNNER_LOST, "boom", True)),
        # ... but not once the attempts are used up
        *[(kind, Facts(attempts=3), True, Outcome(R.FAILED, T.FAILED, kind, "boom"))
          for kind in sorted(RETRYABLE)],
        # ... nor when no agent is left to take the task
        (K.RUNNER_LOST, Facts(), False,
         Outcome(R.FAILED, T.FAILED, K.RUNNER_LOST, "boom; no agent left to retry on")),
        # the other kinds fail the task at once
        *[(kind, Facts(), True, Outcome(R.FAILED, T.FAILED, kind, "boom"))
          for kind in sorted(set(FailureKind) - RETRYABLE - {K.CANCELLED})],
        # a cancel ends run and task as cancelled
        (K.CANCELLED, Facts(cancel_requested=True), True,
         Outcome(R.CANCELLED, T.CANCELLED, K.CANCELLED, "boom")),
        # a cancel the user asked for wins over whatever the attempt reported
        (K.RUNNER_LOST, Facts(cancel_requested=True), True,
         Outcome(R.FAILED, T.CANCELLED, K.CANCELLED, "boom")),
        (K.AGENT_ERROR, Facts(state=T.CLAIMED, cancel_requested=True), True,
         Outcome(R.FAILED, T.CANCELLED, K.CANCELLED, "boom")),
        # an attempt that is no longer the task's current one ends alone
        (K.RUNNER_LOST, Facts(current_run="r-newer"), True,
         Outcome(R.FAILED, None, K.RUNNER_LOST, "boom")),
        (K.CANCELLED, Facts(current_run=None), True,
         Outcome(R.CANCELLED, None, K.CANCELLED, "boom")),
    ],
)  # fmt: skip
def test_on_failure(
    kind: FailureKind, facts: Facts, has_candidates: bool, expected: Outcome
) -> None:
    assert on_failure(kind, facts, RUN, "boom", has_candidates=has_candidates) == expected


@pytest.mark.parametrize("kind", list(FailureKind))
@pytest.mark.parametrize("state", sorted(TASK_TERMINAL))
def test_a_failure_cannot_reopen_a_finished_task(kind: FailureKind, state: T) -> None:
    """A stored state the rules forbid leaving is refused, not overwritten."""
    with pytest.raises(InvalidTransition):
        on_failure(kind, Facts(state=state), RUN, "boom")


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        (Facts(state=T.WORKING), Outcome(R.SUCCEEDED, T.DONE)),
        (Facts(state=T.CLAIMED), Outcome(R.SUCCEEDED, T.DONE)),
        (Facts(state=T.WORKING, cancel_requested=True), Outcome(R.SUCCEEDED, T.DONE)),
        (Facts(current_run="r-newer"), Outcome(R.SUCCEEDED, None)),
    ],
)
def test_on_success(facts: Facts, expected: Outcome) -> None:
    assert on_success(facts, RUN) == expected


def test_success_of_a_finished_task_is_refused() -> None:
    with pytest.raises(InvalidTransition):
        on_success(Facts(state=T.CANCELLED), RUN)


@pytest.mark.parametrize(
    ("reported", "cancel_requested", "expected"),
    [
        ("agent-exited", False, K.AGENT_EXITED),
        ("timeout", False, K.TIMEOUT),
        ("cancelled", True, K.CANCELLED),
        ("cancelled", False, K.AGENT_ERROR),  # the agent cancelled itself: its own failure
        ("no-such-kind", False, K.AGENT_ERROR),
        (None, False, K.AGENT_ERROR),
        ("", True, K.AGENT_ERROR),
    ],
)
def test_reported_failure(reported: str | None, cancel_requested: bool, expected: K) -> None:
    assert reported_failure(reported, cancel_requested=cancel_requested) is expected


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (T.PENDING, CancelAction.CANCEL_NOW),
        (T.BLOCKED, CancelAction.CANCEL_NOW),
        (T.CLAIMED, CancelAction.ASK_RUNNER),
        (T.WORKING, CancelAction.ASK_RUNNER),
        (T.REVIEW, CancelAction.ASK_RUNNER),
        (T.DONE, CancelAction.NOTHING),
        (T.FAILED, CancelAction.NOTHING),
        (T.CANCELLED, CancelAction.NOTHING),
    ],
)
def test_on_cancel(state: TaskState, expected: CancelAction) -> None:
    assert on_cancel(state) is expected


@pytest.mark.parametrize("state", list(TaskState))
def test_on_claim_and_on_events(state: TaskState) -> None:
    if state is T.PENDING:
        assert on_claim(Facts(state=state)) is T.CLAIMED
    else:
        with pytest.raises(InvalidTransition):
            on_claim(Facts(state=state))
    assert on_events(state) is (T.WORKING if state is T.CLAIMED else None)


@pytest.mark.parametrize("state", list(TaskState))
def test_on_no_candidates(state: TaskState) -> None:
    assert on_no_candidates(state) is (T.FAILED if state is T.PENDING else None)


def test_would_retry_follows_kind_attempts_and_cancel() -> None:
    assert would_retry(K.TIMEOUT, Facts(attempts=2))
    assert not would_retry(K.TIMEOUT, Facts(attempts=3))
    assert not would_retry(K.TIMEOUT, Facts(cancel_requested=True))
    assert not would_retry(K.BUDGET_EXCEEDED, Facts())
