"""Tenants and projects as resources: where they are authorized, what they show, what they own.

A Tenant is authorized as the tenant it names and a Project as the project it names, so a tenant
admin can manage its own projects and only cluster admins create tenants. A get shows the quota
usage next to the quota. Deleting either is refused while it still holds resources: the
ownership tree (tenant → project → agents, secrets) is deleted from the leaves up, which is the
order ``delete -f`` uses. A tenant's service accounts are the exception: they go with it, as a
project's tasks and runs go with the project.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from clawfleet.core.errors import Forbidden, HasDependents
from clawfleet.domain.kinds import ALL_KINDS, Scope
from clawfleet.domain.resources import ResourceKey, ResourceRecord
from clawfleet.schemas.registry import ResourceIn
from clawfleet.services import quotas
from clawfleet.services.context import RequestContext
from clawfleet.services.identity import service_account_principal
from clawfleet.services.resource_hooks import Desired, KindHooks
from clawfleet.services.tokens import TokenService
from clawfleet.store.repositories.identity import IdentityRepository
from clawfleet.store.repositories.resources import ResourceRepository
from clawfleet.store.repositories.tasks import TaskRepository


def where(key: ResourceKey) -> tuple[str, str | None]:
    """The (tenant, project) a resource belongs to, for authorization."""
    if key.kind == "Tenant":
        return key.name, None
    if key.kind == "Project":
        return key.tenant, key.name
    return key.tenant, key.project or None


async def _with_usage(
    conn: AsyncConnection, record: ResourceRecord, view: dict[str, Any]
) -> dict[str, Any]:
    tenant, project = where(record.key)
    return {
        **view,
        "status": {**view["status"], "usage": await quotas.report(conn, tenant, project)},
    }


def _refuse_if_holding(what: str, held: dict[str, int], scope: str, *, tenant_wide: bool) -> None:
    """HasDependents naming each kind still held, with the command that lists exactly them
    (``scope``: the command's flags that name the tenant or project)."""
    if not held:
        return
    kinds = [info for info in ALL_KINDS if info.kind in held]  # parents first, as apply does
    counts = [
        f"{held[info.kind]} {info.kind}{'' if held[info.kind] == 1 else 's'}" for info in kinds
    ]
    listed = " and ".join([", ".join(counts[:-1]), counts[-1]] if len(counts) > 1 else counts)
    # Inside a tenant, project-scoped kinds live in projects other than the default one too.
    if tenant_wide and any(info.scope is Scope.PROJECT for info in kinds):
        scope += " --all-projects"
    plurals = ",".join(info.plural for info in kinds)
    pronoun = "it" if sum(held.values()) == 1 else "them"
    raise HasDependents(
        f"{what} still has {listed}; delete {pronoun} first (`clawfleet get {plurals} {scope}`)"
    )


class TenantHooks(KindHooks):
    def __init__(self, tokens: TokenService, default_quota: dict[str, Any]) -> None:
        self.tokens = tokens
        self.default_quota = default_quota

    def split(self, obj: ResourceIn) -> tuple[dict[str, Any], dict[str, bytes] | None]:
        """A tenant that sets no quota gets the default one (``quotas.tenantDefault``), stored
        in its spec so that `get` and `describe` show what holds; ``quota: {}`` sets none."""
        spec, values = super().split(obj)
        if "quota" not in spec and self.default_quota:
            spec["quota"] = dict(self.default_quota)
        return spec, values

    async def admit(
        self,
        conn: AsyncConnection,
        ctx: RequestContext,
        current: ResourceRecord | None,
        desired: Desired,
    ) -> None:
        # A tenant's quota is set by cluster admins: its own admins may not raise it.
        if ctx.principal.is_admin or current is None:
            return
        if current.spec.get("quota") != desired.spec.get("quota"):
            raise Forbidden(f"only cluster admins change the quota of tenant {current.key.name!r}")

    async def show(
        self, conn: AsyncConnection, record: ResourceRecord, view: dict[str, Any]
    ) -> dict[str, Any]:
        return await _with_usage(conn, record, view)

    async def deleting(self, conn: AsyncConnection, record: ResourceRecord) -> dict[str, Any]:
        name = record.key.name
        held = await ResourceRepository(conn).count_in_scope(tenant=name, project=None)
        _refuse_if_holding(f"tenant {name!r}", held, f"--tenant {name}", tenant_wide=True)
        return await self._delete_service_accounts(conn, name)

    async def _delete_service_accounts(self, conn: AsyncConnection, tenant: str) -> dict[str, Any]:
        """Delete the tenant's service accounts and their API keys, in the tenant's transaction.

        They are not children that block the delete, as projects and RoleBindings are: by the
        time a tenant may go, its RoleBindings are gone, so its service accounts hold no role
        anywhere and their keys open nothing a user would miss; and no ``delete -f`` could
        remove them, since they are not declared in files. Left behind, their keys would still
        sign in as the tenant, and a later tenant of the same name would inherit them. The key
        rows are deleted, not merely revoked, so that nothing of them is listed under a new
        service account of the same name; the tenant's audit record keeps what was removed.
        """
        repo = IdentityRepository(conn)
        accounts = [row["name"] for row in await repo.service_accounts(tenant)]
        principals = [service_account_principal(tenant, name) for name in accounts]
        keys = await repo.delete_keys_of(principals)
        await repo.delete_service_accounts(tenant)
        return {"serviceAccounts": accounts, "apiKeys": keys} if accounts else {}

    def deleted(self, record: ResourceRecord, removed: dict[str, Any]) -> None:
        # Only now: a check cached before the commit would let the keys in for a while longer.
        tenant = record.key.name
        accounts = removed.get("serviceAccounts", [])
        self.tokens.forget_principals({service_account_principal(tenant, n) for n in accounts})


class ProjectHooks(KindHooks):
    async def show(
        self, conn: AsyncConnection, record: ResourceRecord, view: dict[str, Any]
    ) -> dict[str, Any]:
        return await _with_usage(conn, record, view)

    async def deleting(self, conn: AsyncConnection, record: ResourceRecord) -> dict[str, Any]:
        key = record.key
        held = await ResourceRepository(conn).count_in_scope(tenant=key.tenant, project=key.name)
        scope = f"--tenant {key.tenant} --project {key.name}"
        _refuse_if_holding(f"project {key.name!r}", held, scope, tenant_wide=False)
        # Its tasks and runs are the project's history and go with it: a later project of the
        # same name must not list them. None can still run, since its agents are gone.
        tasks = await TaskRepository(conn).delete_in_project(key.tenant, key.name)
        return {"tasks": tasks} if tasks else {}
