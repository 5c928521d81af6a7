"""The stored shape of a resource, independent of any wire format or database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from clawfleet.domain.ids import Uid


@dataclass(frozen=True)
class ResourceKey:
    """What names a resource: unique per (kind, tenant, project, name). Unused scopes are ''."""

    kind: str
    tenant: str
    project: str
    name: str

    def describe(self) -> str:
        where = []
        if self.tenant:
            where.append(f"tenant {self.tenant!r}")
        if self.project:
            where.append(f"project {self.project!r}")
        suffix = f" in {', '.join(where)}" if where else ""
        return f"{self.kind.lower()} {self.name!r}{suffix}"


@dataclass(frozen=True)
class ResourceRecord:
    uid: Uid
    key: ResourceKey
    generation: int
    resource_version: int
    labels: dict[str, str]
    annotations: dict[str, str]
    spec: dict[str, Any]
    status: dict[str, Any]
    created_at: datetime
    updated_at: datetime
