"""RoleBinding: who holds which built-in role in a tenant, or in one project of it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from clawfleet.schemas.base import Name, WireModel
from clawfleet.schemas.meta import ObjectMeta

BindableRole = Literal["tenant-admin", "operator", "developer", "viewer"]


class Subject(WireModel):
    kind: Literal["User", "ServiceAccount"]
    name: Name


class RoleBindingSpec(WireModel):
    role: BindableRole
    project: Name | None = None  # None: every project of the tenant
    subjects: list[Subject] = Field(min_length=1, max_length=1000)


class RoleBindingIn(WireModel):
    api_version: Literal["clawfleet.dev/v1"] = "clawfleet.dev/v1"
    kind: Literal["RoleBinding"]
    metadata: ObjectMeta
    spec: RoleBindingSpec
    status: dict[str, object] | None = None
