"""Tenant and Project specs: the ownership tree."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from clawfleet.schemas.base import WireModel
from clawfleet.schemas.meta import ObjectMeta


class TenantSpec(WireModel):
    display_name: str | None = Field(default=None, max_length=256)
    description: str | None = Field(default=None, max_length=4096)


class ProjectSpec(WireModel):
    display_name: str | None = Field(default=None, max_length=256)
    description: str | None = Field(default=None, max_length=4096)


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
