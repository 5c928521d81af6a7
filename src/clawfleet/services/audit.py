"""The audit log: who changed what, when, from where, allowed or denied.

Allowed mutations are recorded by ``record`` inside the mutation's own write transaction, so a
change and its audit record commit together or not at all. ``guard`` is the authorization check
for mutations: it calls ``policy.authorize`` and records a denial in a transaction of its own;
``refusals`` does the same for a refusal that comes later, from inside a write (admission).
Records name changed fields, never values of secrets.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from clawfleet.core.clock import Clock
from clawfleet.core.errors import ClawfleetError, Forbidden, NotFound
from clawfleet.services.context import RequestContext
from clawfleet.services.policy import Verb, authorize, list_scope
from clawfleet.services.views import format_time
from clawfleet.store.db import Database
from clawfleet.store.repositories.audit import AuditRepository


def changed_fields(
    before: dict[str, Any], after: dict[str, Any], prefix: str = "spec"
) -> list[str]:
    """Dotted paths whose values differ between two documents (values are not recorded)."""
    paths: list[str] = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        path = f"{prefix}.{key}"
        if isinstance(old, dict) and isinstance(new, dict):
            paths += changed_fields(old, new, path)
        elif old != new:
            paths.append(path)
    return paths


class AuditLog:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def _row(
        self,
        ctx: RequestContext,
        verb: str,
        kind: str,
        tenant: str,
        project: str | None,
        name: str,
        outcome: str,
        details: dict[str, Any] | None,
        now: datetime,
    ) -> dict[str, Any]:
        return {
            "at": now,
            "principal": ctx.principal.name[:160],
            "tenant": tenant,
            "project": project or "",
            "kind": kind,
            "name": name[:63],
            "verb": verb,
            "outcome": outcome,
            "client": ctx.client[:64],
            "request_id": ctx.request_id[:32],
            "details": details or {},
        }

    async def record(
        self,
        conn: AsyncConnection,
        ctx: RequestContext,
        verb: str,
        kind: str,
        tenant: str,
        project: str | None,
        name: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Record an allowed mutation, in the caller's open write transaction."""
        row = self._row(
            ctx, verb, kind, tenant, project, name, "allowed", details, self.clock.now()
        )
        await AuditRepository(conn).add(row)

    async def guard(
        self,
        ctx: RequestContext,
        verb: Verb,
        kind: str,
        tenant: str,
        project: str | None,
        name: str,
        *,
        what: str = "",
    ) -> None:
        """Authorize a mutation; a refusal is audited as denied, then raised."""
        try:
            authorize(ctx.principal, verb, kind, tenant, project, what=what)
        except (Forbidden, NotFound) as exc:
            await self._denied(ctx, verb, kind, tenant, project, name, exc)
            raise

    @contextlib.asynccontextmanager
    async def refusals(
        self,
        ctx: RequestContext,
        verb: Verb,
        kind: str,
        tenant: str,
        project: str | None,
        name: str,
    ) -> AsyncIterator[None]:
        """Audit as denied a Forbidden raised inside (an admission refusal or a full quota; the
        record's reason is its error code). Wrap the write transaction: the record is written
        after its rollback."""
        try:
            yield
        except Forbidden as exc:
            await self._denied(ctx, verb, kind, tenant, project, name, exc)
            raise

    async def _denied(
        self,
        ctx: RequestContext,
        verb: Verb,
        kind: str,
        tenant: str,
        project: str | None,
        name: str,
        exc: ClawfleetError,
    ) -> None:
        row = self._row(
            ctx, verb.value, kind, tenant, project, name, "denied",
            {"reason": exc.code}, self.clock.now(),
        )  # fmt: skip
        async with self.db.write() as conn:
            await AuditRepository(conn).add(row)

    async def find(
        self,
        ctx: RequestContext,
        *,
        kind: str | None = None,
        user: str | None = None,
        since: datetime | None = None,
        before: int | None = None,
        limit: int = 100,
        all_tenants: bool = False,
    ) -> list[dict[str, Any]]:
        if ctx.principal.is_admin and ctx.tenant is None:
            scopes = None  # cluster admins see everything unless they ask for one tenant
        else:
            tenant, _, scopes = list_scope(
                ctx.principal, "Audit", ctx.default_tenant, None, all_tenants=all_tenants
            )
            if tenant is not None and scopes is None:
                scopes = [(tenant, None)]
        async with self.db.read() as conn:
            rows = await AuditRepository(conn).find(
                scopes=scopes, kind=kind, principal=user, since=since, before_id=before, limit=limit
            )
        return [
            {"id": r["id"], "time": format_time(r["at"]), "principal": r["principal"],
             "verb": r["verb"], "kind": r["kind"], "tenant": r["tenant"] or None,
             "project": r["project"] or None, "name": r["name"], "outcome": r["outcome"],
             "client": r["client"], "requestId": r["request_id"], "details": r["details"]}
            for r in rows
        ]  # fmt: skip
