"""Task wire models: what to do, for which agent, with which queue semantics; and the task as
the API returns it."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, model_validator

from clawfleet.domain.tasks import Task
from clawfleet.schemas.base import (
    API_VERSION,
    Annotations,
    Backoff,
    Labels,
    LineOrNone,
    Name,
    OutModel,
    TaskTimeout,
    Text,
    WireModel,
)
from clawfleet.schemas.json_values import JsonObject
from clawfleet.schemas.meta import ListMeta


class RetryPolicy(WireModel):
    max_attempts: int = Field(default=3, ge=1, le=20)
    backoff: Backoff = "1s"


class TaskSpec(WireModel):
    agent: Name | None = None
    selector: LineOrNone = Field(default=None, max_length=4096)
    prompt: Text = Field(max_length=1024 * 1024)
    data: JsonObject = Field(default_factory=dict)
    priority: int = Field(default=0, ge=-1000, le=1000)
    timeout: TaskTimeout | None = None
    retry: RetryPolicy = RetryPolicy()
    idempotency_key: LineOrNone = Field(default=None, max_length=255)

    @model_validator(mode="after")
    def _one_target(self) -> TaskSpec:
        if bool(self.agent) == bool(self.selector):
            raise ValueError("give exactly one target: 'agent' or 'selector'")
        return self


class TaskMeta(WireModel):
    name: Name | None = None  # assigned by the server when absent
    tenant: Name | None = None
    project: Name | None = None
    labels: Labels = Field(default_factory=dict)
    annotations: Annotations = Field(default_factory=dict)


class TaskIn(WireModel):
    api_version: Literal["clawfleet.dev/v1"] = "clawfleet.dev/v1"
    kind: Literal["Task"] = "Task"
    metadata: TaskMeta = TaskMeta()
    spec: TaskSpec


class SteerIn(WireModel):
    message: Text = Field(min_length=1, max_length=256 * 1024)


class ScaleIn(WireModel):
    replicas: int = Field(ge=0, le=1000)


class TaskMetaOut(OutModel):
    name: str
    tenant: str
    project: str
    uid: str
    labels: dict[str, str]
    created_by: str
    created_at: datetime
    updated_at: datetime


class RetryOut(OutModel):
    max_attempts: int
    backoff: str


def _unset(value: object) -> bool:
    return value is None


class TaskSpecOut(OutModel):
    """The spec as submitted: fields the task does not set are left out, as in a manifest."""

    agent: str | None = Field(default=None, exclude_if=_unset)
    selector: str | None = Field(default=None, exclude_if=_unset)
    prompt: str
    data: dict[str, Any]
    priority: int
    timeout: str | None = Field(default=None, exclude_if=_unset)
    retry: RetryOut
    idempotency_key: str | None = Field(default=None, exclude_if=_unset)


class TaskStatusOut(OutModel):
    state: str
    attempts: int
    current_run: str | None
    result: dict[str, Any] | None
    failure_kind: str | None
    error: str | None
    cancel_requested: bool
    finished_at: datetime | None


class TaskOut(OutModel):
    api_version: str = API_VERSION
    kind: Literal["Task"] = "Task"
    metadata: TaskMetaOut
    spec: TaskSpecOut
    status: TaskStatusOut

    @classmethod
    def of(cls, task: Task) -> TaskOut:
        return cls(
            metadata=TaskMetaOut(
                name=task.name, tenant=task.tenant, project=task.project, uid=task.id,
                labels=task.labels, created_by=task.created_by, created_at=task.created_at,
                updated_at=task.updated_at,
            ),
            spec=TaskSpecOut(
                agent=task.agent, selector=task.selector, prompt=task.prompt, data=task.data,
                priority=task.priority,
                timeout=f"{task.timeout_seconds}s" if task.timeout_seconds is not None else None,
                retry=RetryOut(max_attempts=task.max_attempts, backoff=f"{task.backoff_seconds}s"),
                idempotency_key=task.idempotency_key,
            ),
            status=TaskStatusOut(
                state=task.state.value, attempts=task.attempts, current_run=task.current_run,
                result=task.result,
                failure_kind=task.failure_kind.value if task.failure_kind else None,
                error=task.error, cancel_requested=task.cancel_requested,
                finished_at=task.finished_at,
            ),
        )  # fmt: skip


class TaskListOut(OutModel):
    api_version: str = API_VERSION
    kind: Literal["TaskList"] = "TaskList"
    metadata: ListMeta
    items: list[TaskOut]


class SteerOut(OutModel):
    run: str
    command: int
    status: Literal["sent"] = "sent"
