"""An Instance as the store keeps it: one replica of an Agent, typed and immutable.

The instance repository returns these, and nobody mutates one: a phase change is a repository
move (checked against the lifecycle rules and the stored phase), any other change an update, and
the caller goes on with the record the service hands back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NewType

from clawfleet.domain.lifecycle import InstancePhase, StopRequest

InstanceId = NewType("InstanceId", str)

# The liveness a runner's start-failure report leaves on its instance.
FAILED_LIVENESS = "failed"


@dataclass(frozen=True)
class Instance:
    id: InstanceId
    name: str  # unique in its project: the agent's name and a short random suffix
    tenant: str
    project: str
    agent: str
    agent_uid: str
    agent_generation: int  # the agent's generation when this instance was launched
    revision: str  # digest of what it runs (domain.revisions); '' if launched before revisions
    runtime: str
    phase: InstancePhase
    liveness: str  # what the runner last reported (starting, ready, idle...)
    handle: Mapping[str, Any] | None  # the runtime's handle, as stored; None before a launch
    token_id: str | None  # the runner token of the current launch
    restarts: int
    consecutive_failures: int
    backoff_until: datetime | None
    last_error: str | None
    stop_requested: StopRequest
    heartbeat_at: datetime | None
    started_at: datetime | None
    stopped_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @property
    def start_failure(self) -> str | None:
        """Why the runner of the current launch could not start its agent program, if it said
        so (``services/runner_failures.py`` records it). A launch clears ``heartbeat_at`` and
        the runner's registration sets it, so an earlier launch's report does not count."""
        if self.liveness == FAILED_LIVENESS and self.heartbeat_at is not None:
            return self.last_error or None
        return None
