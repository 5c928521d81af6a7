"""Tenant and Project specs: the ownership tree."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from clawfleet.domain.limits import MAX_COUNT
from clawfleet.schemas.base import LineOrNone, Quantity, TextOrNone, WireModel
from clawfleet.schemas.meta import ObjectMeta


class Quota(WireModel):
    """Limits on what a tenant or project may hold; a missing field means no limit."""

    agents: int | None = Field(default=None, ge=0, le=MAX_COUNT)
    instances: int | None = Field(default=None, ge=0, le=MAX_COUNT)  # replicas of its agents
    cpu: Quantity | None = None  # replicas x resources.cpu
    memory: Quantity | None = None  # replicas x resources.memory
    concurrent_runs: int | None = Field(default=None, ge=0, le=MAX_COUNT)
    stored_bytes: Quantity | None = None  # specs and secret values


class TenantSpec(WireModel):
    display_name: LineOrNone = Field(default=None, max_length=256)
    description: TextOrNone = Field(default=None, max_length=4096)
    quota: Quota | None = None


class ProjectSpec(WireModel):
    display_name: LineOrNone = Field(default=None, max_length=256)
    description: TextOrNone = Field(default=None, max_length=4096)
    quota: Quota | None = None


class TenantIn(WireModel):
    api_version: Literal["clawfleet.dev/v1"] = "clawfleet.dev/v1"
    kind: Literal["Tenant"]
    metadata: ObjectMeta
    spec: TenantSpec = TenantSpec()
    status: dict[str, object] | None = None


class ProjectIn(WireModel):
    api_version: Literal["clawfleet.dev/v1"] = "clawfleet.dev/v1"
    kind: Literal["Project"]
    metadata: ObjectMeta
    spec: ProjectSpec = ProjectSpec()
    status: dict[str, object] | None = None
