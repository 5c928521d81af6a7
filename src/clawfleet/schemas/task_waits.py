"""The answer of the task long poll (`GET /tasks/{name}/wait`): the task, and why it waits."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from clawfleet.schemas.base import OutModel
from clawfleet.schemas.tasks import TaskOut

WaitUntil = Literal["started", "finished"]


class TaskWaitOut(OutModel):
    task: TaskOut
    waiting: str | None = Field(
        default=None,
        description="While the task is pending: why no instance has taken it yet, e.g. "
        "\"agent 'x' has no ready instance: phase Stopped\"; null otherwise.",
    )
