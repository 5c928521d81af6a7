"""Secret values: sealing, comparing and the value-free status the API shows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from clawfleet.domain.ids import Uid
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
