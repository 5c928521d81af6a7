"""Turn stored records into the wire envelope the API returns."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from clawfleet.domain.kinds import Scope, find_kind
from clawfleet.domain.resources import ResourceRecord
from clawfleet.schemas.base import API_VERSION


def format_time(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def view_resource(record: ResourceRecord) -> dict[str, Any]:
    info = find_kind(record.key.kind)
    scope = info.scope if info else Scope.PROJECT
    metadata: dict[str, Any] = {"name": record.key.name}
    if scope is not Scope.CLUSTER:
        metadata["tenant"] = record.key.tenant
    if scope is Scope.PROJECT:
        metadata["project"] = record.key.project
    metadata.update(
        uid=record.uid,
        generation=record.generation,
        resourceVersion=str(record.resource_version),
        labels=record.labels,
        annotations=record.annotations,
        createdAt=format_time(record.created_at),
        updatedAt=format_time(record.updated_at),
    )
    return {
        "apiVersion": API_VERSION,
        "kind": record.key.kind,
        "metadata": metadata,
        "spec": record.spec,
        "status": record.status,
    }
