"""Every task, run and instance state change passes these rules (DESIGN.md rule 4).

The enums of the agent's own state machines (``StopRequest``, ``AgentState``, ``AgentPhase``)
and the rules that derive an agent's desired instances and phase live here too.

Each rule table maps a state to the states it may move to. ``check_*`` raises
``InvalidTransition`` for anything else; the repository moves call them with the *stored*
from-state and write with a compare-and-swap on it, so no module can write a state the rules
forbid. The outcome rules below decide what an event (a claim, events, a success, a failure, a
cancel) does to a task and its run. Tables: ``tests/domain/test_lifecycle.py`` (from/to
matrices) and ``tests/domain/test_outcomes.py`` (outcomes).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from clawfleet.core.errors import Conflict


class TaskState(enum.StrEnum):
    PENDING = "pending"
    CLAIMED = "claimed"
    WORKING = "working"
    REVIEW = "review"
    DONE = "done"
    FAILED = "failed"
    BLOCKED = "blocked"
    CANCELLED = "cancelled"


class RunState(enum.StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class InstancePhase(enum.StrEnum):
    PENDING = "Pending"  # recorded, not launched yet
    STARTING = "Starting"  # launched, runner not registered yet
    RUNNING = "Running"  # runner registered and heartbeating
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    CRASH_LOOP = "CrashLoop"  # exited repeatedly; waiting for its backoff
    LOST = "Lost"  # heartbeats stopped while the runtime says it runs


class FailureKind(enum.StrEnum):
    RUNNER_LOST = "runner-lost"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    AGENT_EXITED = "agent-exited"
    PROVIDER_ERROR = "provider-error"
    PROVIDER_AUTH_FAILED = "provider-auth-failed"
    BUDGET_EXCEEDED = "budget-exceeded"
    INVALID_OUTPUT = "invalid-output"
    AGENT_ERROR = "agent-error"  # the agent reported a failure of its own


# Failures worth another attempt under the task's retry policy.
RETRYABLE = frozenset(
    {
        FailureKind.RUNNER_LOST,
        FailureKind.TIMEOUT,
        FailureKind.AGENT_EXITED,
        FailureKind.PROVIDER_ERROR,
    }
)

TASK_TERMINAL = frozenset({TaskState.DONE, TaskState.FAILED, TaskState.CANCELLED})
RUN_TERMINAL = frozenset({RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED})

TASK_RULES: dict[TaskState, frozenset[TaskState]] = {
    # pending → failed when no agent is left that could ever take the task
    TaskState.PENDING: frozenset(
        {TaskState.CLAIMED, TaskState.CANCELLED, TaskState.BLOCKED, TaskState.FAILED}
    ),
    TaskState.BLOCKED: frozenset({TaskState.PENDING, TaskState.CANCELLED}),
    # claimed/working go back to pending when an attempt fails and the policy retries
    TaskState.CLAIMED: frozenset(
        {
            TaskState.WORKING,
            TaskState.PENDING,
            TaskState.DONE,
            TaskState.REVIEW,
            TaskState.FAILED,
            TaskState.CANCELLED,
        }
    ),
    TaskState.WORKING: frozenset(
        {TaskState.PENDING, TaskState.DONE, TaskState.REVIEW, TaskState.FAILED, TaskState.CANCELLED}
    ),
    TaskState.REVIEW: frozenset({TaskState.DONE, TaskState.PENDING, TaskState.CANCELLED}),
    TaskState.DONE: frozenset(),
    TaskState.FAILED: frozenset(),
    TaskState.CANCELLED: frozenset(),
}

RUN_RULES: dict[RunState, frozenset[RunState]] = {
    RunState.RUNNING: frozenset({RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED}),
    RunState.SUCCEEDED: frozenset(),
    RunState.FAILED: frozenset(),
    RunState.CANCELLED: frozenset(),
}

INSTANCE_RULES: dict[InstancePhase, frozenset[InstancePhase]] = {
    InstancePhase.PENDING: frozenset(
        {InstancePhase.STARTING, InstancePhase.STOPPED, InstancePhase.CRASH_LOOP}
    ),
    InstancePhase.STARTING: frozenset(
        {
            InstancePhase.RUNNING,
            InstancePhase.STOPPING,
            InstancePhase.STOPPED,
            InstancePhase.CRASH_LOOP,
            InstancePhase.LOST,
        }
    ),
    InstancePhase.RUNNING: frozenset(
        {
            InstancePhase.STOPPING,
            InstancePhase.STOPPED,
            InstancePhase.CRASH_LOOP,
            InstancePhase.LOST,
            InstancePhase.STARTING,
        }
    ),
    InstancePhase.CRASH_LOOP: frozenset(
        {InstancePhase.STARTING, InstancePhase.STOPPED, InstancePhase.STOPPING}
    ),
    InstancePhase.LOST: frozenset(
        {
            InstancePhase.STARTING,
            InstancePhase.STOPPING,
            InstancePhase.STOPPED,
            InstancePhase.RUNNING,
        }
    ),
    InstancePhase.STOPPING: frozenset({InstancePhase.STOPPED}),
    InstancePhase.STOPPED: frozenset(),
}


class InvalidTransition(Conflict):
    code = "invalid-transition"

    def __init__(self, what: str, source: str, target: str) -> None:
        super().__init__(f"{what} cannot go from {source} to {target}")


def check_task(source: TaskState, target: TaskState) -> TaskState:
    if target not in TASK_RULES[source]:
        raise InvalidTransition("a task", source.value, target.value)
    return target


def check_run(source: RunState, target: RunState) -> RunState:
    if target not in RUN_RULES[source]:
        raise InvalidTransition("a run", source.value, target.value)
    return target


def check_instance(source: InstancePhase, target: InstancePhase) -> InstancePhase:
    if source != target and target not in INSTANCE_RULES[source]:
        raise InvalidTransition("an instance", source.value, target.value)
    return target


# -- outcome rules -------------------------------------------------------------------------
#
# Services ask these pure rules what an event does to a task and its run, then persist the
# answer through the repository moves (``move_task``, ``move_run``), which check the move
# against the tables above and compare-and-swap on the stored from-state. The rules are tested
# as tables in ``tests/domain/test_outcomes.py``.


class AttemptFacts(Protocol):
    """What the rules need to know of a task (``domain.tasks.Task`` has it all)."""

    @property
    def state(self) -> TaskState: ...
    @property
    def attempts(self) -> int: ...
    @property
    def max_attempts(self) -> int: ...
    @property
    def cancel_requested(self) -> bool: ...
    @property
    def current_run(self) -> str | None: ...


@dataclass(frozen=True)
class Outcome:
    """What an ended attempt does: the run's end state, and the task's (None: unchanged)."""

    run: RunState
    task: TaskState | None
    failure: FailureKind | None = None
    error: str | None = None
    requeue: bool = False  # back to the queue of every candidate agent, after the backoff

    @property
    def finishes_task(self) -> bool:
        return self.task is not None and self.task in TASK_TERMINAL


class CancelAction(enum.Enum):
    NOTHING = "nothing"  # already ended
    CANCEL_NOW = "cancel-now"  # not running anywhere: the task is cancelled at once
    ASK_RUNNER = "ask-runner"  # an attempt runs: the runner is told, the attempt ends cancelled


def on_claim(task: AttemptFacts) -> TaskState:
    """A runner takes the task: a new attempt starts."""
    return check_task(task.state, TaskState.CLAIMED)


def on_events(task: TaskState) -> TaskState | None:
    """The first events of an attempt: a claimed task is now working; else nothing changes."""
    return TaskState.WORKING if task is TaskState.CLAIMED else None


def reported_failure(reported: str | None, *, cancel_requested: bool) -> FailureKind:
    """The failure kind a runner reports, as the control plane records it.

    Unknown kinds are the agent's own errors, and an agent that says "cancelled" when nobody
    asked it to has failed on its own (``agent-error``), not been cancelled by a user."""
    try:
        kind = FailureKind(reported or FailureKind.AGENT_ERROR.value)
    except ValueError:
        return FailureKind.AGENT_ERROR
    if kind is FailureKind.CANCELLED and not cancel_requested:
        return FailureKind.AGENT_ERROR
    return kind


def on_success(task: AttemptFacts, run_id: str) -> Outcome:
    """The attempt succeeded; the task is done if this is still its current attempt."""
    if task.current_run != run_id:
        return Outcome(RunState.SUCCEEDED, None)
    return Outcome(RunState.SUCCEEDED, check_task(task.state, TaskState.DONE))


def would_retry(kind: FailureKind, task: AttemptFacts) -> bool:
    """Whether a failure of this kind gets another attempt under the task's policy."""
    return (
        not task.cancel_requested
        and kind is not FailureKind.CANCELLED
        and kind in RETRYABLE
        and task.attempts < task.max_attempts
    )


def on_failure(
    kind: FailureKind,
    task: AttemptFacts,
    run_id: str,
    error: str,
    *,
    has_candidates: bool = True,
) -> Outcome:
    """The attempt failed (or was cancelled): retry, fail or cancel the task.

    A cancel the user asked for wins over whatever the attempt reported; a retryable failure
    goes back to the queue while attempts remain and some agent can still take it."""
    run_state = RunState.CANCELLED if kind is FailureKind.CANCELLED else RunState.FAILED
    if task.current_run != run_id:
        return Outcome(run_state, None, kind, error)
    if task.cancel_requested:
        return Outcome(
            run_state, check_task(task.state, TaskState.CANCELLED), FailureKind.CANCELLED, error
        )
    if would_retry(kind, task):
        if has_candidates:
            return Outcome(run_state, check_task(task.state, TaskState.PENDING), kind, error, True)
        return Outcome(
            run_state,
            check_task(task.state, TaskState.FAILED),
            kind,
            f"{error}; no agent left to retry on",
        )
    target = TaskState.CANCELLED if kind is FailureKind.CANCELLED else TaskState.FAILED
    return Outcome(run_state, check_task(task.state, target), kind, error)


def on_no_candidates(task: TaskState) -> TaskState | None:
    """Every agent that could take a waiting task is gone: it fails, since nothing ever will.
    A task already claimed is left to its run, which fails on its own when its instance stops."""
    if task is TaskState.PENDING:
        return check_task(task, TaskState.FAILED)
    return None


def on_cancel(task: TaskState) -> CancelAction:
    """A user cancels the task."""
    if task in TASK_TERMINAL:
        return CancelAction.NOTHING
    if task in (TaskState.PENDING, TaskState.BLOCKED):
        check_task(task, TaskState.CANCELLED)
        return CancelAction.CANCEL_NOW
    return CancelAction.ASK_RUNNER


def retry_delay(attempt: int, base: float, cap: float = 300.0) -> float:
    """Exponential backoff before attempt ``attempt + 1``: base, 2·base, 4·base... capped."""
    return float(min(cap, base * 2.0 ** max(0, attempt - 1)))


def requeue_delay(kind: FailureKind, attempt: int, base: float) -> float:
    """When a failed attempt's task may be claimed again. A lost runner is not the task's
    failure, so its retry starts at once on another instance; other failures back off."""
    return 0.0 if kind is FailureKind.RUNNER_LOST else retry_delay(attempt, base)


def restart_delay(consecutive_failures: int, base: float = 1.0, cap: float = 60.0) -> float:
    """Backoff before relaunching an instance that exited on its own."""
    return float(min(cap, base * 2.0 ** max(0, consecutive_failures - 1)))


# -- instances and agents -----------------------------------------------------------------
# The state machines around instances that are not phases: what was asked of an instance, what
# the user declares for an agent, and what the agent controller reports for it.


class StopRequest(enum.IntEnum):
    """What was asked of an instance (``instances.stop_requested``)."""

    NONE = 0
    STOP = 1  # scale-down or `instance stop`: drain, then stop (the agent may replace it)
    RESTART = 2  # `instance restart`: stop and launch again in place


class AgentState(enum.StrEnum):
    """What the user declares in an agent's ``spec.state``."""

    RUNNING = "Running"
    SLEEPING = "Sleeping"  # no instances until work arrives
    STOPPED = "Stopped"


class AgentPhase(enum.StrEnum):
    """What the agent controller reports in an agent's ``status.phase``."""

    RUNNING = "Running"  # every desired instance is ready
    DEGRADED = "Degraded"  # an instance crash-loops or cannot be launched
    SLEEPING = "Sleeping"
    PENDING = "Pending"  # instances are on their way
    STOPPED = "Stopped"
    FAILED = "Failed"  # cannot be reconciled as declared (a permanent error; see lastError)


def desired_instances(state: AgentState, replicas: int, *, asleep: bool) -> int:
    """How many instances an agent should have now. A Sleeping agent that woke for work runs at
    least one, even with ``replicas: 0``."""
    if state is AgentState.STOPPED or asleep:
        return 0
    if state is AgentState.SLEEPING:
        return max(replicas, 1)
    return replicas


def agent_phase(
    state: AgentState, *, asleep: bool, degraded: bool, ready: int, desired: int
) -> AgentPhase:
    """The phase an agent reports, from what its instances are doing."""
    if state is AgentState.STOPPED:
        return AgentPhase.STOPPED
    if asleep:
        return AgentPhase.SLEEPING
    if degraded:
        return AgentPhase.DEGRADED
    return AgentPhase.RUNNING if ready >= desired else AgentPhase.PENDING
