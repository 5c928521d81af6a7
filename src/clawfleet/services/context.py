"""Who is asking, for which tenant and project. Built once per request by the API layer."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_TENANT = "default"
DEFAULT_PROJECT = "default"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. ``tenant`` is the home tenant ('' for cluster-wide principals)."""

    name: str
    role: str
    tenant: str = ""
    token_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class RequestContext:
    principal: Principal
    # What the request asked for explicitly (query parameters); None when it did not say.
    tenant: str | None = None
    project: str | None = None
    request_id: str = "-"
    client: str = "-"

    @property
    def default_tenant(self) -> str:
        return self.tenant or self.principal.tenant or DEFAULT_TENANT

    @property
    def default_project(self) -> str:
        return self.project or DEFAULT_PROJECT

    def list_scope(self, *, all_tenants: bool, all_projects: bool) -> tuple[str | None, str | None]:
        """(tenant, project) a listing covers; None means every one the caller may see."""
        tenant = None if all_tenants else self.default_tenant
        project = None if (all_tenants or all_projects) else self.default_project
        return tenant, project
