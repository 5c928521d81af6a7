"""What to do with one instance this pass, decided by a pure function.

The agent controller observes an instance (the stored record, what its runtime reports, how
many runs it holds), asks ``plan_instance`` for one action and executes it; the next pass
observes again. Keeping the decision pure makes the whole tree a table test
(``tests/controllers/test_instance_plan.py``) and leaves the executor small. An action never
does two phase moves: marking an instance Lost and replacing it are two passes, so a runner
that was only slow gets one more interval to come back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from clawfleet.domain.instances import Instance
from clawfleet.domain.lifecycle import InstancePhase, StopRequest, restart_delay
from clawfleet.runtimes.base import Observation, State

# A crash-looping instance counts as healthy again once it heartbeats this long after a launch.
HEALTHY_AFTER = 10.0
FRESH_HEARTBEAT = 5.0


@dataclass(frozen=True)
class Observed:
    """What the controller saw of one instance this pass."""

    process: Observation | None  # what the runtime reports for the stored handle; None: none
    running_runs: int


@dataclass(frozen=True)
class AgentTarget:
    """What the agent wants of each of its instances."""

    revision: str  # the digest an instance must run
    runtime: str | None  # the runtime it must run on; None if this control plane has none


class PlanTimings(Protocol):
    @property
    def lost_after(self) -> float:
        """Seconds without a heartbeat before an instance is Lost."""

    @property
    def start_timeout(self) -> float:
        """Seconds from launch to registration."""

    @property
    def drain_timeout(self) -> float:
        """Seconds a stopping instance may take to finish its runs."""


# -- the actions (a closed set) ----------------------------------------------------------------


@dataclass(frozen=True)
class Keep:
    """Nothing to do this pass."""


@dataclass(frozen=True)
class Launch:
    """A recorded instance that was never launched."""

    reason: str = "Launched"


@dataclass(frozen=True)
class Relaunch:
    """A crash-looping instance whose backoff is over."""


@dataclass(frozen=True)
class Restart:
    """A user asked for a restart: stop, launch again in place; the request is consumed."""


@dataclass(frozen=True)
class Replace:
    """Stop the process and launch a new one for the same instance."""

    reason: str  # the event: Replaced (Lost) or Updated (another revision)
    why: str  # what the runs it held fail with
    counts_as_restart: bool


@dataclass(frozen=True)
class MarkLost:
    """Heartbeats stopped while the runtime says it runs."""

    message: str


@dataclass(frozen=True)
class CrashLoop:
    """It exited (or never registered): wait ``delay`` seconds, then relaunch."""

    why: str
    delay: float
    halt: bool  # the process may still run and must be stopped first


@dataclass(frozen=True)
class ResetFailures:
    """It has been healthy for a while: its next crash starts the backoff from the beginning."""


@dataclass(frozen=True)
class Drain:
    """Asked to stop: tell the runner, which finishes its runs and exits."""


@dataclass(frozen=True)
class Stop:
    """Stop it for good (the process, its token, its phase)."""

    reason: str


Action = (
    Keep
    | Launch
    | Relaunch
    | Restart
    | Replace
    | MarkLost
    | CrashLoop
    | ResetFailures
    | Drain
    | Stop
)


# -- the plan ----------------------------------------------------------------------------------


def plan_instance(
    instance: Instance,
    observed: Observed,
    agent: AgentTarget,
    now: datetime,
    timings: PlanTimings,
) -> Action:
    """The one action to take for ``instance`` now."""
    phase = instance.phase
    if instance.stop_requested is StopRequest.STOP or phase is InstancePhase.STOPPING:
        return _plan_stopping(instance, observed, now, timings)
    if instance.runtime != agent.runtime:
        return Stop("RuntimeChanged")
    if instance.stop_requested is StopRequest.RESTART:
        return Restart()
    if phase is InstancePhase.PENDING:
        return Launch()
    if phase is InstancePhase.CRASH_LOOP:
        waiting = instance.backoff_until is not None and now < instance.backoff_until
        return Keep() if waiting else Relaunch()
    process = observed.process
    delay = restart_delay(instance.consecutive_failures + 1)
    if process is None or process.state is not State.RUNNING:
        code = process.exit_code if process is not None else None
        why = f"the runner exited (code {code})" if code is not None else "the runner is gone"
        # The runner's own word on why it could not start beats its exit code.
        return CrashLoop(instance.start_failure or why, delay, halt=False)
    since_start = (now - (instance.started_at or now)).total_seconds()
    if phase is InstancePhase.STARTING and since_start > timings.start_timeout:
        return CrashLoop("the runner did not register in time", delay, halt=True)
    if phase in (InstancePhase.RUNNING, InstancePhase.LOST) and instance.heartbeat_at is not None:
        silent = (now - instance.heartbeat_at).total_seconds()
        if silent > timings.lost_after:
            if phase is InstancePhase.RUNNING:
                return MarkLost(f"no heartbeat for {int(silent)}s")
            return Replace("Replaced", "heartbeats stopped", counts_as_restart=True)
        healthy = silent < FRESH_HEARTBEAT and since_start > HEALTHY_AFTER
        if instance.consecutive_failures and healthy:
            return ResetFailures()
    outdated = instance.revision != agent.revision
    if phase is InstancePhase.RUNNING and outdated and observed.running_runs == 0:
        return Replace("Updated", "what the agent runs changed", counts_as_restart=False)
    return Keep()


def _plan_stopping(
    instance: Instance, observed: Observed, now: datetime, timings: PlanTimings
) -> Action:
    alive = observed.process is not None and observed.process.state is State.RUNNING
    if not alive:
        return Stop("Stopped")
    if instance.phase is not InstancePhase.STOPPING:
        return Drain()
    draining = (now - instance.updated_at).total_seconds()
    return Keep() if draining < timings.drain_timeout else Stop("Stopped")
