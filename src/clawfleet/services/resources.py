"""Resource use cases: create, get, list, update, apply and delete, for every declarative kind.

Each mutation runs in one write transaction: parent check, compare-and-swap on
``resourceVersion``, labels, what a kind's hooks write (secret values, cascades) and the
idempotency record commit together or not at all. A write that changes nothing writes nothing
(so applying a file twice bumps no generation). Kinds differ only through their ``KindHooks``
(``services/resource_hooks.py``); this module never asks which kind it holds.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from clawfleet.core.clock import Clock
from clawfleet.core.errors import (
    AlreadyExists,
    ConcurrentWrite,
    FieldError,
    InvalidInput,
    NotFound,
    StaleVersion,
)
from clawfleet.domain.ids import new_uid
from clawfleet.domain.kinds import KindInfo, Scope, find_kind
from clawfleet.domain.resources import ResourceKey, ResourceRecord
from clawfleet.domain.selectors import Selector
from clawfleet.schemas.registry import ResourceIn
from clawfleet.services import quotas
from clawfleet.services.agent_hooks import AgentHooks
from clawfleet.services.audit import AuditLog
from clawfleet.services.context import RequestContext
from clawfleet.services.idempotency import IdempotentAnswers
from clawfleet.services.policy import Verb, authorize, list_scope
from clawfleet.services.resource_hooks import NO_HOOKS, Desired, KindHooks
from clawfleet.services.scoping import parent_key, resolve_key
from clawfleet.services.secret_box import SecretBox
from clawfleet.services.secrets import SecretHooks
from clawfleet.services.tenancy import ProjectHooks, TenantHooks, where
from clawfleet.services.tokens import TokenService
from clawfleet.services.views import view_resource
from clawfleet.store.db import Database
from clawfleet.store.paging import Page, decode_cursor, encode_cursor
from clawfleet.store.repositories.resources import ResourceRepository


class ApplyResult(enum.Enum):
    CREATED = "created"
    CONFIGURED = "configured"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class Limits:
    default_page_size: int = 100
    max_page_size: int = 1000
    idempotency_ttl_seconds: int = 24 * 3600


def kind_hooks(
    box: SecretBox, tokens: TokenService, clock: Clock, *, tenant_quota: dict[str, Any]
) -> dict[str, KindHooks]:
    """The kinds that need more than the generic flow; every other kind gets ``NO_HOOKS``.
    ``tenant_quota``: the quota of a Tenant whose spec sets none."""
    return {
        "Secret": SecretHooks(box),
        "Tenant": TenantHooks(tokens, tenant_quota),
        "Project": ProjectHooks(),
        "Agent": AgentHooks(clock),
    }


def _parse_version(text: str | None, field: str = "metadata.resourceVersion") -> int | None:
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 18:  # "²".isdigit()
        raise InvalidInput(
            f"{field} {text[:40]!r} is not a version this server issued",
            [FieldError(field, "must be a number", "invalid")],
        )
    return int(text)


def _authorize(ctx: RequestContext, verb: Verb, key: ResourceKey) -> None:
    tenant, project = where(key)
    authorize(ctx.principal, verb, key.kind, tenant, project, what=key.describe())


def not_found(key: ResourceKey) -> NotFound:
    plural = find_kind(key.kind)
    hint = f"; list them with `clawfleet get {plural.plural if plural else key.kind}`"
    return NotFound(f"{key.describe()} not found{hint}")


def stale_version(key: ResourceKey) -> StaleVersion:
    return StaleVersion(f"{key.describe()} was changed concurrently; get it again and retry")


def _check_version(current: ResourceRecord, expected: int | None) -> None:
    if expected is not None and expected != current.resource_version:
        raise StaleVersion(
            f"{current.key.describe()} has changed since resourceVersion {expected} "
            f"(now {current.resource_version}); get it again and reapply your change"
        )


async def _require_parent(repo: ResourceRepository, key: ResourceKey) -> None:
    info = find_kind(key.kind)
    parent = parent_key(key, info.scope) if info else None
    if parent is None:
        return
    if await repo.get(parent, for_update=True) is None:
        raise NotFound(
            f"{parent.describe()} not found; create the {parent.kind.lower()} first "
            f"(or put it earlier in the file you apply)"
        )


class ResourceService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        box: SecretBox,
        limits: Limits | None = None,
        *,
        hooks: Mapping[str, KindHooks],
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.limits = limits or Limits()
        self.hooks = dict(hooks)
        self.answers = IdempotentAnswers(clock, box, self.limits.idempotency_ttl_seconds)
        # Told the kind of every resource that was written (caches such as RoleBindings).
        self.on_change = on_change or (lambda _kind: None)
        self.audit = AuditLog(db, clock)

    def _hooks(self, kind: str) -> KindHooks:
        return self.hooks.get(kind, NO_HOOKS)

    async def _guard(self, ctx: RequestContext, verb: Verb, key: ResourceKey) -> None:
        tenant, project = where(key)
        await self.audit.guard(ctx, verb, key.kind, tenant, project, key.name, what=key.describe())

    def _refusals(
        self, ctx: RequestContext, verb: Verb, key: ResourceKey
    ) -> contextlib.AbstractAsyncContextManager[None]:
        tenant, project = where(key)
        return self.audit.refusals(ctx, verb, key.kind, tenant, project, key.name)

    async def _audit(
        self,
        conn: AsyncConnection,
        ctx: RequestContext,
        verb: str,
        key: ResourceKey,
        details: dict[str, Any],
    ) -> None:
        tenant, project = where(key)
        await self.audit.record(conn, ctx, verb, key.kind, tenant, project, key.name, details)

    # -- reads -------------------------------------------------------------------------------

    async def get(self, ctx: RequestContext, kind: KindInfo, name: str) -> dict[str, Any]:
        key = resolve_key(ctx, kind, name)
        _authorize(ctx, Verb.GET, key)
        async with self.db.read() as conn:
            record = await ResourceRepository(conn).get(key)
            if record is None:
                raise not_found(key)
            return await self._hooks(key.kind).show(conn, record, view_resource(record))

    async def list(
        self,
        ctx: RequestContext,
        kind: KindInfo,
        *,
        selector: Selector,
        all_tenants: bool = False,
        all_projects: bool = False,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> Page[dict[str, Any]]:
        if kind.scope is Scope.CLUSTER:
            tenant, project, scopes = list_scope(
                ctx.principal, kind.kind, "", None, all_tenants=True
            )
        else:
            wanted = (
                ctx.default_project if kind.scope is Scope.PROJECT and not all_projects else None
            )
            tenant, project, scopes = list_scope(
                ctx.principal, kind.kind, ctx.default_tenant, wanted, all_tenants=all_tenants
            )
        size = min(limit or self.limits.default_page_size, self.limits.max_page_size)
        after = decode_cursor(cursor, (str, str, str)) if cursor else None
        async with self.db.read() as conn:
            records = await ResourceRepository(conn).list(
                kind.kind,
                tenant=tenant,
                project=project,
                selector=selector,
                after=(after[0], after[1], after[2]) if after else None,
                limit=size + 1,
                scopes=scopes,
            )
        more, records = len(records) > size, records[:size]
        last = records[-1].key if more else None
        cursor_out = encode_cursor([last.tenant, last.project, last.name]) if last else None
        return Page([view_resource(r) for r in records], cursor_out)

    # -- writes ------------------------------------------------------------------------------

    async def create(
        self, ctx: RequestContext, obj: ResourceIn, *, idempotency_key: str | None = None
    ) -> tuple[dict[str, Any], bool]:
        """Create ``obj``; returns (the resource, whether this is a replayed first answer)."""
        desired = self._desired(ctx, obj)
        await self._guard(ctx, Verb.CREATE, desired.key)
        fingerprint = self.answers.fingerprint(obj.model_dump(mode="json"), desired.secret_values)
        try:
            async with self._refusals(ctx, Verb.CREATE, desired.key), self.db.write() as conn:
                if idempotency_key:
                    replay = await self.answers.replay(
                        conn, ctx.principal.name, idempotency_key, fingerprint
                    )
                    if replay is not None:
                        return replay, True
                if await ResourceRepository(conn).get(desired.key) is not None:
                    raise AlreadyExists(
                        f"{desired.key.describe()} already exists; use `clawfleet apply` to "
                        "update it"
                    )
                record = await self._insert(conn, ctx, desired)
                hooks = self._hooks(desired.key.kind)
                await self._audit(conn, ctx, "create", desired.key, hooks.created_details(desired))
                view = view_resource(record)
                if idempotency_key:
                    await self.answers.remember(
                        conn, ctx.principal.name, idempotency_key, fingerprint, view
                    )
        except IntegrityError as exc:  # a concurrent create of the same name won the race
            raise AlreadyExists(f"{desired.key.describe()} already exists") from exc
        self.on_change(desired.key.kind)
        return view, False

    async def update(self, ctx: RequestContext, obj: ResourceIn, name: str) -> dict[str, Any]:
        desired = self._desired(ctx, obj)
        if desired.key.name != name:
            raise InvalidInput(
                f"metadata.name {desired.key.name!r} does not match {name!r} in the URL",
                [FieldError("metadata.name", "does not match the URL", "mismatch")],
            )
        await self._guard(ctx, Verb.UPDATE, desired.key)
        async with self._refusals(ctx, Verb.UPDATE, desired.key), self.db.write() as conn:
            current = await ResourceRepository(conn).get(desired.key, for_update=True)
            if current is None:
                raise not_found(desired.key)
            record, _ = await self._update(conn, ctx, current, desired)
        self.on_change(desired.key.kind)
        return view_resource(record)

    async def apply(
        self, ctx: RequestContext, obj: ResourceIn
    ) -> tuple[ApplyResult, dict[str, Any]]:
        desired = self._desired(ctx, obj)
        hooks = self._hooks(desired.key.kind)
        # Authorize before looking, so a caller learns nothing of what it may not see.
        async with self.db.read() as conn:
            exists = await ResourceRepository(conn).get(desired.key) is not None
        verb = Verb.UPDATE if exists else Verb.CREATE
        await self._guard(ctx, verb, desired.key)
        try:
            async with self._refusals(ctx, verb, desired.key), self.db.write() as conn:
                current = await ResourceRepository(conn).get(desired.key, for_update=True)
                if current is None:
                    if exists:  # deleted meanwhile: creating needs its own permission
                        _authorize(ctx, Verb.CREATE, desired.key)
                    if desired.resource_version is not None:
                        raise not_found(desired.key)
                    created = await self._insert(conn, ctx, desired)
                    await self._audit(
                        conn, ctx, "create", desired.key, hooks.created_details(desired)
                    )
                    self.on_change(desired.key.kind)
                    return ApplyResult.CREATED, view_resource(created)
                if not exists:  # created meanwhile: updating needs its own permission
                    _authorize(ctx, Verb.UPDATE, desired.key)
                record, changed = await self._update(conn, ctx, current, desired)
        except IntegrityError as exc:
            raise ConcurrentWrite(
                f"{desired.key.describe()} was created concurrently; apply again"
            ) from exc
        result = ApplyResult.CONFIGURED if changed else ApplyResult.UNCHANGED
        if changed:
            self.on_change(desired.key.kind)
        return result, view_resource(record)

    async def delete(
        self,
        ctx: RequestContext,
        kind: KindInfo,
        name: str,
        *,
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        key = resolve_key(ctx, kind, name)
        expected = _parse_version(resource_version, "resourceVersion")
        hooks = self._hooks(key.kind)
        await self._guard(ctx, Verb.DELETE, key)
        async with self.db.write() as conn:
            repo = ResourceRepository(conn)
            current = await repo.get(key, for_update=True)
            if current is None:
                raise not_found(key)
            _check_version(current, expected)
            details = await hooks.deleting(conn, current)
            if not await repo.delete(current.uid, expected_version=current.resource_version):
                raise stale_version(key)
            await self._audit(conn, ctx, "delete", key, details)
        hooks.deleted(current, details)
        self.on_change(key.kind)
        return view_resource(current)

    async def ensure(self, ctx: RequestContext, obj: ResourceIn) -> None:
        """Create ``obj`` unless a resource of that name exists (used for bootstrap defaults)."""
        with contextlib.suppress(AlreadyExists):
            await self.create(ctx, obj)

    # -- internals ---------------------------------------------------------------------------

    def _desired(self, ctx: RequestContext, obj: ResourceIn) -> Desired:
        info = find_kind(obj.kind)
        assert info is not None, f"no kind info for {obj.kind}"
        meta = obj.metadata
        key = resolve_key(ctx, info, meta.name, meta_tenant=meta.tenant, meta_project=meta.project)
        spec, secret_values = self._hooks(key.kind).split(obj)
        return Desired(
            key=key,
            spec=spec,
            labels=dict(meta.labels),
            annotations=dict(meta.annotations),
            resource_version=_parse_version(meta.resource_version),
            secret_values=secret_values,
        )

    async def _insert(
        self, conn: AsyncConnection, ctx: RequestContext, desired: Desired
    ) -> ResourceRecord:
        repo = ResourceRepository(conn)
        hooks = self._hooks(desired.key.kind)
        await _require_parent(repo, desired.key)
        await hooks.admit(conn, ctx, None, desired)
        now = self.clock.now()
        record = ResourceRecord(
            uid=new_uid(),
            key=desired.key,
            generation=1,
            resource_version=1,
            labels=desired.labels,
            annotations=desired.annotations,
            spec=desired.spec,
            status=hooks.initial_status(desired, now),
            created_at=now,
            updated_at=now,
        )
        await quotas.check(conn, desired.key, None, (record.spec, record.status))
        await repo.insert(record)
        await hooks.inserted(conn, record, desired)
        return record

    async def _update(
        self, conn: AsyncConnection, ctx: RequestContext, current: ResourceRecord, desired: Desired
    ) -> tuple[ResourceRecord, bool]:
        """Write ``desired`` over ``current`` if anything differs, and audit it."""
        hooks = self._hooks(current.key.kind)
        await hooks.admit(conn, ctx, current, desired)
        _check_version(current, desired.resource_version)
        now = self.clock.now()
        status = await hooks.changing(conn, current, desired, now)
        spec_changed = status is not None or current.spec != desired.spec
        meta_changed = (current.labels, current.annotations) != (
            desired.labels,
            desired.annotations,
        )
        if not spec_changed and not meta_changed:
            return current, False
        record = replace(
            current,
            generation=current.generation + (1 if spec_changed else 0),
            resource_version=current.resource_version + 1,
            labels=desired.labels,
            annotations=desired.annotations,
            spec=desired.spec,
            status=current.status if status is None else status,
            updated_at=now,
        )
        await quotas.check(
            conn, current.key, (current.spec, current.status), (record.spec, record.status)
        )
        if not await ResourceRepository(conn).replace(
            record, expected_version=current.resource_version
        ):
            raise stale_version(current.key)
        await self._audit(conn, ctx, "update", current.key, hooks.changed_details(current, record))
        return record, True
