"""Where a resource lives: resolve (tenant, project) from its metadata and the request."""

from __future__ import annotations

from clawfleet.core.errors import FieldError, InvalidInput
from clawfleet.domain.kinds import KindInfo, Scope
from clawfleet.domain.resources import ResourceKey
from clawfleet.services.context import DEFAULT_PROJECT, RequestContext


def _pick(field: str, in_metadata: str | None, in_request: str | None, default: str) -> str:
    if in_metadata and in_request and in_metadata != in_request:
        raise InvalidInput(
            f"metadata.{field} is {in_metadata!r} but the request is for {field} {in_request!r}; "
            f"drop one of them or make them agree",
            [FieldError(f"metadata.{field}", f"does not match the request's {field}", "mismatch")],
        )
    return in_metadata or in_request or default


def _refuse(kind: KindInfo, field: str) -> InvalidInput:
    return InvalidInput(
        f"{kind.kind} resources take no metadata.{field}",
        [FieldError(f"metadata.{field}", f"not allowed for kind {kind.kind}", "not-allowed")],
    )


def resolve_key(
    ctx: RequestContext,
    kind: KindInfo,
    name: str,
    *,
    meta_tenant: str | None = None,
    meta_project: str | None = None,
) -> ResourceKey:
    if kind.scope is Scope.CLUSTER:
        if meta_tenant:
            raise _refuse(kind, "tenant")
        if meta_project:
            raise _refuse(kind, "project")
        return ResourceKey(kind.kind, "", "", name)
    tenant = _pick("tenant", meta_tenant, ctx.tenant, ctx.default_tenant)
    if kind.scope is Scope.TENANT:
        if meta_project:
            raise _refuse(kind, "project")
        return ResourceKey(kind.kind, tenant, "", name)
    project = _pick("project", meta_project, ctx.project, DEFAULT_PROJECT)
    return ResourceKey(kind.kind, tenant, project, name)


def parent_key(key: ResourceKey, scope: Scope) -> ResourceKey | None:
    """The resource that must exist before ``key`` can: its tenant or its project."""
    if scope is Scope.TENANT:
        return ResourceKey("Tenant", "", "", key.tenant)
    if scope is Scope.PROJECT:
        return ResourceKey("Project", key.tenant, "", key.project)
    return None
