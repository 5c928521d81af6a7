"""The stored shape of a task and of a run (one attempt of a task on one instance).

Repositories return these frozen records; services decide what changes with the rules in
``lifecycle`` and persist the outcome through the repository moves, never by editing a record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from clawfleet.domain.lifecycle import FailureKind, RunState, TaskState


@dataclass(frozen=True)
class Task:
    seq: int  # FIFO order within a priority; the queue's key
    id: str  # server-assigned, unique everywhere; runs refer to it
    name: str  # unique per (tenant, project); the id when the user gave none
    tenant: str
    project: str
    agent: str | None
    selector: str | None
    prompt: str
    data: dict[str, Any]
    labels: dict[str, str]
    priority: int
    idempotency_key: str | None
    timeout_seconds: int | None
    max_attempts: int
    backoff_seconds: int
    attempts: int
    state: TaskState
    cancel_requested: bool
    current_run: str | None
    result: dict[str, Any] | None
    failure_kind: FailureKind | None
    error: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None

    @property
    def target(self) -> str:
        return self.agent or f"selector={self.selector}"


@dataclass(frozen=True)
class Run:
    id: str
    task_id: str
    task_name: str
    attempt: int
    tenant: str
    project: str
    agent: str
    instance_id: str
    state: RunState
    failure_kind: FailureKind | None
    error: str | None
    result: dict[str, Any] | None
    usage: dict[str, Any] | None
    last_seq: int
    queued_at: datetime
    started_at: datetime
    finished_at: datetime | None
    lease_expires_at: datetime
    deadline_at: datetime | None


@dataclass(frozen=True)
class RunEvent:
    seq: int
    type: str
    data: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class RunCommand:
    """An instruction for the runner that holds a run (cancel, steer), until it acknowledges."""

    id: int
    run_id: str
    type: str
    payload: dict[str, Any]
