"""Which roles each user and service account holds, read from RoleBinding resources.

Every request needs its principal's bindings, so they are indexed by subject and reloaded at
most every ``ttl`` seconds, and at once after a RoleBinding changes in this process.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from clawfleet.core.clock import Clock
from clawfleet.domain.selectors import Selector
from clawfleet.services.context import Binding, Principal
from clawfleet.store.db import Database
from clawfleet.store.repositories.resources import Cursor, ResourceRepository


class BindingIndex:
    def __init__(self, db: Database, clock: Clock, ttl: float = 2.0) -> None:
        self.db = db
        self.clock = clock
        self.ttl = ttl
        self._index: dict[str, tuple[Binding, ...]] = {}
        self._loaded_at: float | None = None

    def invalidate(self) -> None:
        self._loaded_at = None

    async def _load(self) -> None:
        index: dict[str, list[Binding]] = {}
        after: Cursor | None = None
        async with self.db.read() as conn:
            repo = ResourceRepository(conn)
            while True:
                page = await repo.list(
                    "RoleBinding", tenant=None, project=None, selector=Selector(), after=after,
                    limit=1000,
                )  # fmt: skip
                for record in page:
                    spec: dict[str, Any] = record.spec
                    binding = Binding(spec["role"], record.key.tenant, spec.get("project"))
                    for subject in spec.get("subjects", []):
                        if subject["kind"] == "ServiceAccount":
                            key = f"ServiceAccount:{record.key.tenant}/{subject['name']}"
                        else:
                            key = f"User:{subject['name']}"
                        index.setdefault(key, []).append(binding)
                if len(page) < 1000:
                    break
                last = page[-1].key
                after = (last.tenant, last.project, last.name)
        self._index = {key: tuple(sorted(set(value), key=repr)) for key, value in index.items()}
        self._loaded_at = self.clock.monotonic()

    async def attach(self, principal: Principal) -> Principal:
        """The principal with its bindings, and its home tenant if it had none."""
        if principal.role not in ("user", "serviceaccount"):
            return principal
        if self._loaded_at is None or self.clock.monotonic() - self._loaded_at > self.ttl:
            await self._load()
        bindings = self._index.get(principal.subject, ())
        tenant = principal.tenant or (min(b.tenant for b in bindings) if bindings else "")
        return dataclasses.replace(principal, bindings=bindings, tenant=tenant)
