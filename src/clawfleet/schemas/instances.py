"""Instances as the API returns them, and the events of instances and agents.

Built from the stored ``domain.instances.Instance`` record at the API edge, so the served
OpenAPI document describes every field. Wire names are camelCase like every other resource.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict

from clawfleet.domain.instances import Instance
from clawfleet.domain.lifecycle import InstancePhase
from clawfleet.schemas.base import WireModel
from clawfleet.schemas.meta import ListMeta

AGENT_LABEL = "clawfleet.dev/agent"


class OutModel(WireModel):
    """A response model: built by the server from field names, written with wire names."""

    model_config = ConfigDict(validate_by_name=True)


class InstanceMetaOut(OutModel):
    name: str
    tenant: str
    project: str
    uid: str
    labels: dict[str, str]
    created_at: datetime
    updated_at: datetime


class InstanceSpecOut(OutModel):
    agent: str
    agent_generation: int  # the agent's generation at the instance's last launch
    revision: str  # digest of what it runs; '' before its first launch
    runtime: str


class InstanceStatusOut(OutModel):
    phase: InstancePhase
    liveness: str
    restarts: int
    last_error: str | None
    heartbeat_at: datetime | None
    started_at: datetime | None
    stopped_at: datetime | None
    ref: str | None  # the runtime's reference (e.g. pid:starttime); None before a launch


class InstanceOut(OutModel):
    api_version: Literal["clawfleet.dev/v1"] = "clawfleet.dev/v1"
    kind: Literal["Instance"] = "Instance"
    metadata: InstanceMetaOut
    spec: InstanceSpecOut
    status: InstanceStatusOut

    @classmethod
    def of(cls, instance: Instance) -> InstanceOut:
        handle: Mapping[str, Any] = instance.handle or {}
        return cls(
            metadata=InstanceMetaOut(
                name=instance.name, tenant=instance.tenant, project=instance.project,
                uid=instance.id, labels={AGENT_LABEL: instance.agent},
                created_at=instance.created_at, updated_at=instance.updated_at,
            ),
            spec=InstanceSpecOut(
                agent=instance.agent, agent_generation=instance.agent_generation,
                revision=instance.revision, runtime=instance.runtime,
            ),
            status=InstanceStatusOut(
                phase=instance.phase, liveness=instance.liveness, restarts=instance.restarts,
                last_error=instance.last_error, heartbeat_at=instance.heartbeat_at,
                started_at=instance.started_at, stopped_at=instance.stopped_at,
                ref=handle.get("ref"),
            ),
        )  # fmt: skip


class EventOut(OutModel):
    """Something that happened to an agent or an instance (``describe`` shows them)."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str
    time: datetime


class InstanceDetailOut(InstanceOut):
    events: list[EventOut]  # the latest, oldest first


class InstanceListOut(OutModel):
    api_version: Literal["clawfleet.dev/v1"] = "clawfleet.dev/v1"
    kind: Literal["InstanceList"] = "InstanceList"
    metadata: ListMeta
    items: list[InstanceOut]


class EventListOut(OutModel):
    items: list[EventOut]
