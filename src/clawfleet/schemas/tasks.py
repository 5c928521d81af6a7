"""Task wire models: what to do, for which agent, with which queue semantics."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from clawfleet.schemas.base import Annotations, Duration, Labels, Name, WireModel


class RetryPolicy(WireModel):
    max_attempts: int = Field(default=3, ge=1, le=20)
    backoff: Duration = "1s"


class TaskSpec(WireModel):
    agent: Name | None = None
    selector: str | None = Field(default=None, max_length=4096)
    prompt: str = Field(max_length=1024 * 1024)
    data: dict[str, Any] = Field(default_factory=dict)
    priority: int = Field(default=0, ge=-1000, le=1000)
    timeout: Duration | None = None
    retry: RetryPolicy = RetryPolicy()
    idempotency_key: str | None = Field(default=None, max_length=255)

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
    message: str = Field(min_length=1, max_length=256 * 1024)


class ScaleIn(WireModel):
    replicas: int = Field(ge=0, le=1000)
