"""The Kubernetes-style envelope shared by every kind."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from clawfleet.domain.limits import MAX_ID
from clawfleet.schemas.base import Annotations, Labels, LineOrNone, Name, WireModel


class ObjectMeta(WireModel):
    """Metadata as written by users.

    Server-set fields are accepted, so that the output of ``get -o yaml`` can be applied again,
    but only ``resourceVersion`` is used: as a precondition.
    """

    name: Name
    tenant: Name | None = None
    project: Name | None = None
    labels: Labels = Field(default_factory=dict)
    annotations: Annotations = Field(default_factory=dict)
    uid: LineOrNone = Field(default=None, max_length=64)
    generation: int | None = Field(default=None, ge=0, le=MAX_ID)
    resource_version: LineOrNone = Field(default=None, max_length=64)
    created_at: datetime | None = None
    updated_at: datetime | None = None


class ObjectMetaOut(WireModel):
    name: str
    tenant: str | None = None
    project: str | None = None
    uid: str
    generation: int
    resource_version: str
    labels: dict[str, str]
    annotations: dict[str, str]
    created_at: datetime
    updated_at: datetime


class ListMeta(WireModel):
    # "continue" is a Python keyword; the wire name comes from the alias.
    continue_: str | None = Field(default=None, alias="continue")


class ResourceOut(WireModel):
    """A resource as the API returns it; ``spec`` and ``status`` depend on the kind."""

    api_version: str
    kind: str
    metadata: ObjectMetaOut
    spec: dict[str, Any]
    status: dict[str, Any]


class ResourceListOut(WireModel):
    api_version: str
    kind: str
    metadata: ListMeta
    items: list[ResourceOut]


class ApplyResultOut(WireModel):
    result: str  # created | configured | unchanged
    object: ResourceOut
