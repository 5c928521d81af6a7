"""Every task, run and instance state change passes these rules (DESIGN.md rule 4).

The enums of the agent's own state machines (``StopRequest``, ``AgentState``, ``AgentPhase``)
and the rules that derive an agent's desired instances and phase live here too.

Each rule table maps a state to the states it may move to. ``check_*`` raises
``InvalidTransition`` for anything else, so no module can write a phase that the rules forbid.
The tables are tested as from/to matrices in ``tests/domain/test_lifecycle.py``.
"""

from __future__ import annotations

import enum

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
    TaskState.PENDING: frozenset({TaskState.CLAIMED, TaskState.CANCELLED, TaskState.BLOCKED}),
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
    def __init__(self, what: str, source: str, target: str) -> None:
        super().__init__(f"{what} cannot go from {source} to {target}", code="invalid-transition")


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


def task_state_after_failure(kind: FailureKind, attempt: int, max_attempts: int) -> TaskState:
    """What a task becomes when its run fails: retried (pending) while the policy allows."""
    if kind is FailureKind.CANCELLED:
        return TaskState.CANCELLED
    if kind in RETRYABLE and attempt < max_attempts:
        return TaskState.PENDING
    return TaskState.FAILED


def retry_delay(attempt: int, base: float, cap: float = 300.0) -> float:
    """Exponential backoff before attempt ``attempt + 1``: base, 2·base, 4·base... capped."""
    return float(min(cap, base * 2.0 ** max(0, attempt - 1)))


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
