"""Secret values: sealing, comparing, the value-free status the API shows, and the Secret's hooks.

A Secret's values never enter ``resources.spec``: they are sealed into ``secret_versions`` (the
newest version is current), and the resource keeps only its ``type`` and ``allowedAgents`` in
spec and the key names and sizes in status. New values that equal the stored ones write nothing,
so applying the same Secret twice is ``unchanged``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from clawfleet.domain.ids import Uid
from clawfleet.domain.resources import ResourceRecord
from clawfleet.schemas.registry import ResourceIn
from clawfleet.schemas.secrets import SecretIn
from clawfleet.services.resource_hooks import Desired, KindHooks
from clawfleet.services.secret_box import SecretBox
from clawfleet.services.views import format_time
from clawfleet.store.repositories.secrets import SecretVersionRepository


def secret_status(values: dict[str, bytes], version: int, now: datetime) -> dict[str, Any]:
    return {
        "keys": [{"name": k, "size": len(v)} for k, v in sorted(values.items())],
        "version": version,
        "updatedAt": format_time(now),
    }


class SecretValues:
    """Reads and writes the encrypted values of one secret inside an open transaction."""

    def __init__(self, repo: SecretVersionRepository, box: SecretBox) -> None:
        self.repo = repo
        self.box = box

    async def current(self, uid: Uid) -> tuple[int, dict[str, bytes]]:
        found = await self.repo.current(uid)
        if found is None:
            return 0, {}
        version, sealed = found
        return version, self.box.open(sealed, bound_to=uid)

    async def store(self, uid: Uid, values: dict[str, bytes], now: datetime) -> int:
        return await self.repo.add(uid, self.box.seal(values, bound_to=uid), now)


class SecretHooks(KindHooks):
    def __init__(self, box: SecretBox) -> None:
        self.box = box

    def _values(self, conn: AsyncConnection) -> SecretValues:
        return SecretValues(SecretVersionRepository(conn), self.box)

    def split(self, obj: ResourceIn) -> tuple[dict[str, Any], dict[str, bytes] | None]:
        assert isinstance(obj, SecretIn), f"Secret hooks given a {obj.kind}"
        spec: dict[str, Any] = {"type": obj.spec.type}
        if obj.spec.allowed_agents:  # left out when empty, as secrets stored before it had it
            spec["allowedAgents"] = list(obj.spec.allowed_agents)
        return spec, obj.spec.values() or None

    def initial_status(self, desired: Desired, now: datetime) -> dict[str, Any]:
        return secret_status(desired.secret_values or {}, 1, now)

    async def inserted(
        self, conn: AsyncConnection, record: ResourceRecord, desired: Desired
    ) -> None:
        await self._values(conn).store(record.uid, desired.secret_values or {}, record.created_at)

    async def changing(
        self, conn: AsyncConnection, current: ResourceRecord, desired: Desired, now: datetime
    ) -> dict[str, Any] | None:
        if desired.secret_values is None:
            return None
        values = self._values(conn)
        _, stored = await values.current(current.uid)
        if stored == desired.secret_values:
            return None
        version = await values.store(current.uid, desired.secret_values, now)
        return secret_status(desired.secret_values, version, now)

    async def deleting(self, conn: AsyncConnection, record: ResourceRecord) -> dict[str, Any]:
        await SecretVersionRepository(conn).delete_all(record.uid)
        return {}

    def created_details(self, desired: Desired) -> dict[str, Any]:
        return {"keys": sorted(desired.secret_values or {})}

    def changed_details(self, before: ResourceRecord, after: ResourceRecord) -> dict[str, Any]:
        details = super().changed_details(before, after)
        if before.status.get("version") != after.status.get("version"):
            details["keys"] = [k["name"] for k in after.status.get("keys", [])]
            details["newVersion"] = after.status.get("version")
        return details
