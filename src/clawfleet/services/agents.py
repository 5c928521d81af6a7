"""Agents beyond CRUD: the operations on a running agent and what the agent controller needs.

``scale``, ``sleep`` and ``wake`` change one or two spec fields of an Agent without the caller
sending the whole document (``patch_spec``). The controller reads every Agent, resolves the
secret values of its ``secretEnv`` at launch (the only place values are opened for an agent)
and writes what it observed into ``status`` without bumping the generation.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from clawfleet.core.clock import Clock
from clawfleet.core.errors import NotFound
from clawfleet.core.redact import register_secrets
from clawfleet.domain.kinds import AGENT
from clawfleet.domain.resources import ResourceKey, ResourceRecord
from clawfleet.domain.selectors import Selector
from clawfleet.services import quotas
from clawfleet.services.audit import AuditLog
from clawfleet.services.context import RequestContext
from clawfleet.services.policy import Verb
from clawfleet.services.resource_hooks import change_details
from clawfleet.services.resources import not_found, stale_version
from clawfleet.services.scoping import resolve_key
from clawfleet.services.secret_box import SecretBox
from clawfleet.services.secrets import SecretValues
from clawfleet.services.views import view_resource
from clawfleet.store.db import Database
from clawfleet.store.repositories.resources import Cursor, ResourceRepository
from clawfleet.store.repositories.secrets import SecretVersionRepository

_BATCH = 1000


class AgentService:
    def __init__(self, db: Database, clock: Clock, box: SecretBox) -> None:
        self.db = db
        self.clock = clock
        self.box = box
        self.audit = AuditLog(db, clock)

    async def all_agents(self) -> list[ResourceRecord]:
        """Every Agent in every tenant (for controllers: no authorization)."""
        found: list[ResourceRecord] = []
        after: Cursor | None = None
        async with self.db.read() as conn:
            repo = ResourceRepository(conn)
            while True:
                batch = await repo.list(
                    AGENT.kind, tenant=None, project=None, selector=Selector(), after=after,
                    limit=_BATCH,
                )  # fmt: skip
                found += batch
                if len(batch) < _BATCH:
                    return found
                last = batch[-1].key
                after = (last.tenant, last.project, last.name)

    async def set_status(self, agent: ResourceRecord, status: dict[str, Any]) -> bool:
        """Write what controllers observed; no generation bump. False if it changed meanwhile."""
        if agent.status == status:
            return True
        updated = replace(
            agent,
            status=status,
            resource_version=agent.resource_version + 1,
            updated_at=self.clock.now(),
        )
        async with self.db.write() as conn:
            return await ResourceRepository(conn).replace(
                updated, expected_version=agent.resource_version
            )

    async def patch_spec(
        self, ctx: RequestContext, name: str, changes: dict[str, Any]
    ) -> dict[str, Any]:
        """Change some spec fields (scale, sleep, wake), bumping the generation if they differ."""
        key = resolve_key(ctx, AGENT, name)
        await self.audit.guard(
            ctx, Verb.UPDATE, key.kind, key.tenant, key.project, key.name, what=key.describe()
        )
        refusals = self.audit.refusals(
            ctx, Verb.UPDATE, key.kind, key.tenant, key.project, key.name
        )
        async with refusals, self.db.write() as conn:
            repo = ResourceRepository(conn)
            current = await repo.get(key, for_update=True)
            if current is None:
                raise not_found(key)
            spec = {**current.spec, **changes}
            if spec == current.spec:
                return view_resource(current)
            record = replace(
                current,
                spec=spec,
                generation=current.generation + 1,
                resource_version=current.resource_version + 1,
                updated_at=self.clock.now(),
            )
            await quotas.check(
                conn, key, (current.spec, current.status), (record.spec, record.status)
            )
            if not await repo.replace(record, expected_version=current.resource_version):
                raise stale_version(key)
            await self.audit.record(
                conn, ctx, "update", key.kind, key.tenant, key.project, key.name,
                change_details(current, record),
            )  # fmt: skip
        return view_resource(record)

    async def resolve_secret_env(self, agent: ResourceRecord) -> dict[str, str]:
        """The values of an agent's secretEnv; raises NotFound naming what is missing."""
        refs: dict[str, Any] = agent.spec.get("secretEnv") or {}
        resolved: dict[str, str] = {}
        async with self.db.read() as conn:
            repo = ResourceRepository(conn)
            values = SecretValues(SecretVersionRepository(conn), self.box)
            for env_name, ref in refs.items():
                key = ResourceKey("Secret", agent.key.tenant, agent.key.project, ref["secret"])
                secret = await repo.get(key)
                if secret is None:
                    raise NotFound(f"secretEnv {env_name}: {key.describe()} not found")
                _, data = await values.current(secret.uid)
                if ref["key"] not in data:
                    raise NotFound(
                        f"secretEnv {env_name}: secret {ref['secret']!r} has no key {ref['key']!r}"
                    )
                resolved[env_name] = data[ref["key"]].decode(errors="replace")
        register_secrets(resolved.values())  # from now on, redacted from this process's logs
        return resolved
