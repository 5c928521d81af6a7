"""Who is asking, for which tenant and project. Built once per request by the API layer."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_TENANT = "default"
DEFAULT_PROJECT = "default"


@dataclass(frozen=True)
class Binding:
    """One role held in a tenant, or in one project of it (``project`` None: all projects)."""

    role: str
    tenant: str
    project: str | None = None


@dataclass(frozen=True)
class Principal:
    """An authenticated caller.

    ``role`` is the kind of principal: "admin" (cluster-wide), "runner" (one instance), "user"
    or "serviceaccount"; what users and service accounts may do comes from ``bindings``.
    ``tenant`` is the home tenant ('' for cluster-wide principals).
    """

    name: str
    role: str
    tenant: str = ""
    token_id: str | None = None
    bindings: tuple[Binding, ...] = ()

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def subject(self) -> str:
        """How RoleBindings name this principal: "User:alice", "ServiceAccount:acme/ci"."""
        if self.role == "serviceaccount":
            return f"ServiceAccount:{self.name.removeprefix('serviceaccount:')}"
        return f"User:{self.name.removeprefix('user:')}"


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
