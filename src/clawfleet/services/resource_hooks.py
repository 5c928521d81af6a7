"""The seam between the generic resource flow and the few kinds that need more than a spec.

``services/resources.py`` creates, updates and deletes every declarative kind the same way, which
is what keeps ``apply -f`` uniform. A kind with values that must not be stored in ``spec``
(Secret) or with children and quotas (Tenant, Project) says what it adds by overriding
``KindHooks``; every hook runs inside the flow's own write transaction unless it says otherwise,
so what a hook writes commits with the resource or not at all. A kind without hooks gets the
defaults, which add nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from clawfleet.domain.resources import ResourceKey, ResourceRecord
from clawfleet.schemas.registry import ResourceIn
from clawfleet.services.audit import changed_fields
from clawfleet.services.context import RequestContext


@dataclass(frozen=True)
class Desired:
    """What a request asks a resource to be."""

    key: ResourceKey
    spec: dict[str, Any]
    labels: dict[str, str]
    annotations: dict[str, str]
    resource_version: int | None
    secret_values: dict[str, bytes] | None = None  # None: leave the stored values alone


class KindHooks:
    """What one kind adds to the generic flow. Hooks must not open transactions of their own
    (``Database.write`` is not reentrant) and must not call out of the process."""

    def split(self, obj: ResourceIn) -> tuple[dict[str, Any], dict[str, bytes] | None]:
        """The spec to store, and the values kept out of it (None: the request sets none)."""
        return obj.spec.model_dump(mode="json", exclude_none=True), None

    async def admit(
        self,
        conn: AsyncConnection,
        ctx: RequestContext,
        current: ResourceRecord | None,
        desired: Desired,
    ) -> None:
        """Raise Forbidden if ``ctx`` may not make the resource what ``desired`` says although
        its role lets it create (``current`` None) or update the kind: a decision that depends
        on the change or on other stored resources. Runs before anything is written; the flow
        rolls back and audits the refusal as denied."""

    async def show(
        self, conn: AsyncConnection, record: ResourceRecord, view: dict[str, Any]
    ) -> dict[str, Any]:
        """The view a single get returns; listings show the stored view only (they stay cheap)."""
        return view

    def initial_status(self, desired: Desired, now: datetime) -> dict[str, Any]:
        """The status a new resource starts with (before quotas are checked)."""
        return {}

    async def inserted(
        self, conn: AsyncConnection, record: ResourceRecord, desired: Desired
    ) -> None:
        """Write what belongs with a new resource, after its row exists."""

    async def changing(
        self, conn: AsyncConnection, current: ResourceRecord, desired: Desired, now: datetime
    ) -> dict[str, Any] | None:
        """Store what changed outside ``spec``; the new status if anything did (the change then
        counts as a spec change: it bumps the generation), None if nothing did."""
        return None

    async def deleting(self, conn: AsyncConnection, record: ResourceRecord) -> dict[str, Any]:
        """Refuse the delete (raise), or remove what goes with the resource; returns what was
        removed, for the audit record (no values)."""
        return {}

    def deleted(self, record: ResourceRecord, removed: dict[str, Any]) -> None:
        """After the delete committed: drop what this process caches about the resource and
        what went with it (``removed`` is what ``deleting`` returned)."""

    def created_details(self, desired: Desired) -> dict[str, Any]:
        """The audit details of a create: names of what was set, never values."""
        return {"fields": [f"spec.{name}" for name in sorted(desired.spec)]}

    def changed_details(self, before: ResourceRecord, after: ResourceRecord) -> dict[str, Any]:
        """The audit details of an update: paths that changed, never values."""
        return change_details(before, after)


NO_HOOKS = KindHooks()


def change_details(before: ResourceRecord, after: ResourceRecord) -> dict[str, Any]:
    """The spec paths and metadata that differ between two versions of a resource."""
    fields = changed_fields(before.spec, after.spec)
    if before.labels != after.labels:
        fields.append("metadata.labels")
    if before.annotations != after.annotations:
        fields.append("metadata.annotations")
    return {"fields": fields}
