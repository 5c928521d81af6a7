"""Runs (attempts of a task) and their events, as the API returns them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from clawfleet.domain.tasks import Run, RunEvent
from clawfleet.schemas.base import API_VERSION, OutModel
from clawfleet.schemas.meta import ListMeta


class RunMetaOut(OutModel):
    name: str
    tenant: str
    project: str
    uid: str
    created_at: datetime


class RunSpecOut(OutModel):
    task: str  # the task's name in its project
    task_uid: str
    attempt: int
    agent: str
    instance: str


class RunStatusOut(OutModel):
    state: str
    failure_kind: str | None
    error: str | None
    result: dict[str, Any] | None
    usage: dict[str, Any] | None
    last_seq: int
    queued_at: datetime
    started_at: datetime
    finished_at: datetime | None


class RunOut(OutModel):
    api_version: str = API_VERSION
    kind: Literal["Run"] = "Run"
    metadata: RunMetaOut
    spec: RunSpecOut
    status: RunStatusOut

    @classmethod
    def of(cls, run: Run) -> RunOut:
        return cls(
            metadata=RunMetaOut(
                name=run.id, tenant=run.tenant, project=run.project, uid=run.id,
                created_at=run.started_at,
            ),
            spec=RunSpecOut(
                task=run.task_name, task_uid=run.task_id, attempt=run.attempt, agent=run.agent,
                instance=run.instance_id,
            ),
            status=RunStatusOut(
                state=run.state.value,
                failure_kind=run.failure_kind.value if run.failure_kind else None,
                error=run.error, result=run.result, usage=run.usage, last_seq=run.last_seq,
                queued_at=run.queued_at, started_at=run.started_at, finished_at=run.finished_at,
            ),
        )  # fmt: skip


class RunListOut(OutModel):
    api_version: str = API_VERSION
    kind: Literal["RunList"] = "RunList"
    metadata: ListMeta
    items: list[RunOut]


class EventOut(OutModel):
    seq: int
    type: str
    data: dict[str, Any]
    time: datetime

    @classmethod
    def of(cls, event: RunEvent) -> EventOut:
        return cls(seq=event.seq, type=event.type, data=event.data, time=event.created_at)


class RunEventsOut(OutModel):
    run: str
    state: str
    last_seq: int
    events: list[EventOut]
