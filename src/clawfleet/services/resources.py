"""Resource use cases: create, get, list, update, apply and delete, for every declarative kind.

Each mutation runs in one write transaction: parent check, compare-and-swap on
``resourceVersion``, labels, secret values and the idempotency record commit together or not at
all. A write that changes nothing writes nothing (so applying a file twice bumps no generation).
"""

from __future__ import annotations

import base64
import binascii
import builtins
import contextlib
import enum
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from clawfleet.core.clock import Clock
from clawfleet.core.errors import (
    AlreadyExists,
    Conflict,
    FieldError,
    Forbidden,
    InvalidInput,
    NotFound,
)
from clawfleet.core.redact import register_secrets
from clawfleet.domain.ids import new_uid
from clawfleet.domain.kinds import KindInfo, Scope, find_kind
from clawfleet.domain.resources import ResourceKey, ResourceRecord
from clawfleet.domain.selectors import Selector
from clawfleet.schemas.registry import ResourceIn
from clawfleet.schemas.secrets import SecretIn
from clawfleet.services import quotas
from clawfleet.services.audit import AuditLog, changed_fields
from clawfleet.services.context import RequestContext
from clawfleet.services.policy import Verb, authorize, list_scope
from clawfleet.services.scoping import parent_key, resolve_key
from clawfleet.services.secret_box import SecretBox
from clawfleet.services.secrets import SecretValues, secret_status
from clawfleet.services.views import view_resource
from clawfleet.store.db import Database
from clawfleet.store.repositories.idempotency import IdempotencyRepository, StoredAnswer
from clawfleet.store.repositories.resources import Cursor, ResourceRepository
from clawfleet.store.repositories.secrets import SecretVersionRepository


class ApplyResult(enum.Enum):
    CREATED = "created"
    CONFIGURED = "configured"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


@dataclass(frozen=True)
class Desired:
    """What a request asks a resource to be."""

    key: ResourceKey
    spec: dict[str, Any]
    labels: dict[str, str]
    annotations: dict[str, str]
    resource_version: int | None
    secret_values: dict[str, bytes] | None = None  # None: leave the stored values alone


@dataclass(frozen=True)
class Limits:
    default_page_size: int = 100
    max_page_size: int = 1000
    idempotency_ttl_seconds: int = 24 * 3600


def encode_cursor(cursor: Cursor) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(cursor)).encode()).decode().rstrip("=")


def decode_cursor(text: str) -> Cursor:
    try:
        raw = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        tenant, project, name = (str(part) for part in raw)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise InvalidInput(
            "invalid continue token; start the listing again without it",
            [FieldError("continue", "not a token this server issued", "invalid-cursor")],
        ) from exc
    return tenant, project, name


def _parse_version(text: str | None) -> int | None:
    if text is None:
        return None
    if not text.isdigit() or len(text) > 18:
        raise InvalidInput(
            f"metadata.resourceVersion {text[:40]!r} is not a version this server issued",
            [FieldError("metadata.resourceVersion", "must be a number", "invalid")],
        )
    return int(text)


def _refuse_own_quota_change(
    ctx: RequestContext, current: ResourceRecord, desired: Desired
) -> None:
    """A tenant's quota is set by cluster admins: its own admins may not raise it."""
    if current.key.kind != "Tenant" or ctx.principal.is_admin:
        return
    if current.spec.get("quota") != desired.spec.get("quota"):
        raise Forbidden(
            f"only cluster admins change the quota of tenant {current.key.name!r}",
        )


def _created(desired: Desired) -> dict[str, Any]:
    if desired.key.kind == "Secret":
        return {"keys": sorted(desired.secret_values or {})}
    return {"fields": [f"spec.{name}" for name in sorted(desired.spec)]}


def _changes(before: ResourceRecord, after: ResourceRecord) -> dict[str, Any]:
    fields = changed_fields(before.spec, after.spec)
    if before.labels != after.labels:
        fields.append("metadata.labels")
    if before.annotations != after.annotations:
        fields.append("metadata.annotations")
    details: dict[str, Any] = {"fields": fields}
    if after.key.kind == "Secret" and before.status.get("version") != after.status.get("version"):
        details["keys"] = [k["name"] for k in after.status.get("keys", [])]
        details["newVersion"] = after.status.get("version")
    return details


def where(key: ResourceKey) -> tuple[str, str | None]:
    """The (tenant, project) a resource belongs to, for authorization."""
    if key.kind == "Tenant":
        return key.name, None
    if key.kind == "Project":
        return key.tenant, key.name
    return key.tenant, key.project or None


def _authorize(ctx: RequestContext, verb: Verb, key: ResourceKey) -> None:
    tenant, project = where(key)
    authorize(ctx.principal, verb, key.kind, tenant, project, what=key.describe())


def _not_found(key: ResourceKey) -> NotFound:
    plural = find_kind(key.kind)
    hint = f"; list them with `clawfleet get {plural.plural if plural else key.kind}`"
    return NotFound(f"{key.describe()} not found{hint}")


class ResourceService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        box: SecretBox,
        limits: Limits | None = None,
        *,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.box = box
        self.limits = limits or Limits()
        # Told the kind of every resource that was written (caches such as RoleBindings).
        self.on_change = on_change or (lambda _kind: None)
        self.audit = AuditLog(db, clock)

    async def _guard(self, ctx: RequestContext, verb: Verb, key: ResourceKey) -> None:
        tenant, project = where(key)
        await self.audit.guard(ctx, verb, key.kind, tenant, project, key.name, what=key.describe())

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
                raise _not_found(key)
            view = view_resource(record)
            if key.kind in ("Tenant", "Project"):
                tenant, project = where(key)
                view["status"] = {
                    **view["status"],
                    "usage": await quotas.report(conn, tenant, project),
                }
        return view

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
    ) -> Page:
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
        after = decode_cursor(cursor) if cursor else None
        async with self.db.read() as conn:
            records = await ResourceRepository(conn).list(
                kind.kind,
                tenant=tenant,
                project=project,
                selector=selector,
                after=after,
                limit=size + 1,
                scopes=scopes,
            )
        more = len(records) > size
        records = records[:size]
        next_cursor = None
        if more:
            last = records[-1].key
            next_cursor = encode_cursor((last.tenant, last.project, last.name))
        return Page([view_resource(r) for r in records], next_cursor)

    # -- writes ------------------------------------------------------------------------------

    async def create(
        self, ctx: RequestContext, obj: ResourceIn, *, idempotency_key: str | None = None
    ) -> tuple[dict[str, Any], bool]:
        """Create ``obj``; returns (the resource, whether this is a replayed first answer)."""
        desired = self._desired(ctx, obj)
        await self._guard(ctx, Verb.CREATE, desired.key)
        # Keyed, because for a Secret the request includes its values.
        request_hash = self.box.fingerprint(
            json.dumps(obj.model_dump(mode="json"), sort_keys=True, default=str).encode()
            + b"|"
            + json.dumps(sorted((desired.secret_values or {}).items()), default=str).encode()
        )
        now = self.clock.now()
        try:
            async with self.db.write() as conn:
                if idempotency_key:
                    await IdempotencyRepository(conn).purge(older_than=self._idempotency_horizon())
                    replay = await self._replay(conn, ctx, idempotency_key, request_hash)
                    if replay is not None:
                        return replay, True
                if await ResourceRepository(conn).get(desired.key) is not None:
                    raise AlreadyExists(
                        f"{desired.key.describe()} already exists; use `clawfleet apply` to "
                        "update it"
                    )
                record = await self._insert(conn, desired)
                await self._audit(conn, ctx, "create", desired.key, _created(desired))
                view = view_resource(record)
                if idempotency_key:
                    answer = StoredAnswer(request_hash, 201, json.dumps(view))
                    await IdempotencyRepository(conn).save(
                        ctx.principal.name, idempotency_key, answer, now
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
        async with self.db.write() as conn:
            current = await ResourceRepository(conn).get(desired.key, for_update=True)
            if current is None:
                raise _not_found(desired.key)
            _refuse_own_quota_change(ctx, current, desired)
            record, changed = await self._change(conn, current, desired)
            if changed:
                await self._audit(conn, ctx, "update", desired.key, _changes(current, record))
        self.on_change(desired.key.kind)
        return view_resource(record)

    async def apply(
        self, ctx: RequestContext, obj: ResourceIn
    ) -> tuple[ApplyResult, dict[str, Any]]:
        desired = self._desired(ctx, obj)
        # Authorize before looking, so a caller learns nothing of what it may not see.
        async with self.db.read() as conn:
            exists = await ResourceRepository(conn).get(desired.key) is not None
        await self._guard(ctx, Verb.UPDATE if exists else Verb.CREATE, desired.key)
        try:
            async with self.db.write() as conn:
                current = await ResourceRepository(conn).get(desired.key, for_update=True)
                if current is None:
                    if exists:  # deleted meanwhile: creating needs its own permission
                        _authorize(ctx, Verb.CREATE, desired.key)
                    if desired.resource_version is not None:
                        raise _not_found(desired.key)
                    created = await self._insert(conn, desired)
                    await self._audit(conn, ctx, "create", desired.key, _created(desired))
                    self.on_change(desired.key.kind)
                    return ApplyResult.CREATED, view_resource(created)
                if not exists:  # created meanwhile: updating needs its own permission
                    _authorize(ctx, Verb.UPDATE, desired.key)
                _refuse_own_quota_change(ctx, current, desired)
                record, changed = await self._change(conn, current, desired)
                if changed:
                    await self._audit(conn, ctx, "update", desired.key, _changes(current, record))
        except IntegrityError as exc:
            raise Conflict(
                f"{desired.key.describe()} was created concurrently; apply again",
                code="concurrent-write",
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
        expected = _parse_version(resource_version)
        await self._guard(ctx, Verb.DELETE, key)
        async with self.db.write() as conn:
            repo = ResourceRepository(conn)
            current = await repo.get(key, for_update=True)
            if current is None:
                raise _not_found(key)
            self._check_version(current, expected)
            await self._refuse_if_dependents(repo, current)
            await SecretVersionRepository(conn).delete_all(current.uid)
            if not await repo.delete(current.uid, expected_version=current.resource_version):
                raise self._stale(key)
            await self._audit(conn, ctx, "delete", key, {})
        self.on_change(key.kind)
        return view_resource(current)

    async def ensure(self, ctx: RequestContext, obj: ResourceIn) -> None:
        """Create ``obj`` unless a resource of that name exists (used for bootstrap defaults)."""
        with contextlib.suppress(AlreadyExists):
            await self.create(ctx, obj)

    # -- for controllers and agent operations ------------------------------------------------

    async def all_of_kind(self, kind: str) -> builtins.list[ResourceRecord]:
        """Every resource of a kind in every tenant (controllers only)."""
        found: builtins.list[ResourceRecord] = []
        after: Cursor | None = None
        async with self.db.read() as conn:
            repo = ResourceRepository(conn)
            while True:
                page = await repo.list(
                    kind, tenant=None, project=None, selector=Selector(), after=after, limit=1000
                )
                found += page
                if len(page) < 1000:
                    return found
                last = page[-1].key
                after = (last.tenant, last.project, last.name)

    async def set_status(self, record: ResourceRecord, status: dict[str, Any]) -> bool:
        """Write what controllers observed; no generation bump. False if it changed meanwhile."""
        if record.status == status:
            return True
        updated = replace(
            record,
            status=status,
            resource_version=record.resource_version + 1,
            updated_at=self.clock.now(),
        )
        async with self.db.write() as conn:
            return await ResourceRepository(conn).replace(
                updated, expected_version=record.resource_version
            )

    async def patch_spec(
        self, ctx: RequestContext, kind: KindInfo, name: str, changes: dict[str, Any]
    ) -> dict[str, Any]:
        """Change some spec fields (scale, sleep, wake), bumping the generation if they differ."""
        key = resolve_key(ctx, kind, name)
        await self._guard(ctx, Verb.UPDATE, key)
        async with self.db.write() as conn:
            repo = ResourceRepository(conn)
            current = await repo.get(key, for_update=True)
            if current is None:
                raise _not_found(key)
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
                raise self._stale(key)
            await self._audit(conn, ctx, "update", key, _changes(current, record))
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

    # -- internals ---------------------------------------------------------------------------

    def _desired(self, ctx: RequestContext, obj: ResourceIn) -> Desired:
        info = find_kind(obj.kind)
        assert info is not None, f"no kind info for {obj.kind}"
        meta = obj.metadata
        key = resolve_key(ctx, info, meta.name, meta_tenant=meta.tenant, meta_project=meta.project)
        secret_values = None
        if isinstance(obj, SecretIn):
            spec: dict[str, Any] = {"type": obj.spec.type}
            secret_values = obj.spec.values() or None
        else:
            spec = obj.spec.model_dump(mode="json", exclude_none=True)
        return Desired(
            key=key,
            spec=spec,
            labels=dict(meta.labels),
            annotations=dict(meta.annotations),
            resource_version=_parse_version(meta.resource_version),
            secret_values=secret_values,
        )

    async def _replay(
        self, conn: AsyncConnection, ctx: RequestContext, key: str, request_hash: str
    ) -> dict[str, Any] | None:
        stored = await IdempotencyRepository(conn).find(
            ctx.principal.name, key, self._idempotency_horizon()
        )
        if stored is None:
            return None
        if stored.request_hash != request_hash:
            raise Conflict(
                "this Idempotency-Key was already used for a different request; "
                "use a new key for a new request",
                code="idempotency-key-reused",
            )
        answer: dict[str, Any] = json.loads(stored.body)
        return answer

    def _idempotency_horizon(self) -> datetime:
        return self.clock.now() - timedelta(seconds=self.limits.idempotency_ttl_seconds)

    async def _insert(self, conn: AsyncConnection, desired: Desired) -> ResourceRecord:
        repo = ResourceRepository(conn)
        await self._require_parent(repo, desired.key)
        now = self.clock.now()
        record = ResourceRecord(
            uid=new_uid(),
            key=desired.key,
            generation=1,
            resource_version=1,
            labels=desired.labels,
            annotations=desired.annotations,
            spec=desired.spec,
            status={},
            created_at=now,
            updated_at=now,
        )
        values = desired.secret_values or {}
        if desired.key.kind == "Secret":
            record = replace(record, status=secret_status(values, 1, now))
        await quotas.check(conn, desired.key, None, (record.spec, record.status))
        await repo.insert(record)
        if desired.key.kind == "Secret":
            await SecretValues(SecretVersionRepository(conn), self.box).store(
                record.uid, values, now
            )
        return record

    async def _change(
        self, conn: AsyncConnection, current: ResourceRecord, desired: Desired
    ) -> tuple[ResourceRecord, bool]:
        self._check_version(current, desired.resource_version)
        spec_changed = current.spec != desired.spec
        status = current.status
        now = self.clock.now()
        if current.key.kind == "Secret" and desired.secret_values is not None:
            values = SecretValues(SecretVersionRepository(conn), self.box)
            _, stored = await values.current(current.uid)
            if stored != desired.secret_values:
                version = await values.store(current.uid, desired.secret_values, now)
                status = secret_status(desired.secret_values, version, now)
                spec_changed = True
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
            status=status,
            updated_at=now,
        )
        await quotas.check(
            conn, current.key, (current.spec, current.status), (record.spec, record.status)
        )
        repo = ResourceRepository(conn)
        if not await repo.replace(record, expected_version=current.resource_version):
            raise self._stale(current.key)
        return record, True

    @staticmethod
    def _check_version(current: ResourceRecord, expected: int | None) -> None:
        if expected is not None and expected != current.resource_version:
            raise Conflict(
                f"{current.key.describe()} has changed since resourceVersion {expected} "
                f"(now {current.resource_version}); get it again and reapply your change",
                code="stale-resource-version",
            )

    @staticmethod
    def _stale(key: ResourceKey) -> Conflict:
        return Conflict(
            f"{key.describe()} was changed concurrently; get it again and retry",
            code="stale-resource-version",
        )

    @staticmethod
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

    @staticmethod
    async def _refuse_if_dependents(repo: ResourceRepository, current: ResourceRecord) -> None:
        key = current.key
        if key.kind == "Tenant":
            count = await repo.count_in_scope(tenant=key.name, project=None)
            what = (
                f"tenant {key.name!r} still has {count} resource(s); delete them first "
                f"(`clawfleet get projects --tenant {key.name}`)"
            )
        elif key.kind == "Project":
            count = await repo.count_in_scope(tenant=key.tenant, project=key.name)
            what = (
                f"project {key.name!r} still has {count} resource(s); delete them first "
                f"(`clawfleet get agents,secrets --tenant {key.tenant} --project {key.name}`)"
            )
        else:
            return
        if count:
            raise Conflict(what, code="has-dependents")
