"""Who may do what: the built-in roles and the one authorization rule.

Every service calls ``authorize`` before it reads or writes; no handler checks permissions on
its own. A principal that holds no role where a resource lives gets ``NotVisible`` (a 404, so
that guessing names or ids in another tenant reveals nothing); one that holds a role there that
does not allow the verb gets ``Forbidden`` (a 403).

    role           may
    admin          everything, everywhere (the bootstrap admin)
    tenant-admin   everything in its tenant but create or delete the tenant
    operator       agents, instances, tasks and runs; read the rest
    developer      tasks and runs; read agents, instances, projects and the tenant
    viewer         read everything (secret values are never readable by anyone)
    runner         nothing here: its own runner endpoints only (api/middleware.py)
    team-leader    reserved for teams: its own team's agents

Handing a secret to a program is reading it: the program can print the values (reversed or
encoded, so redaction misses them). So naming a secret in an agent's ``secretEnv`` needs
``Verb.USE`` on Secret, which only admins and tenant admins hold (their ALL rule), unless the
secret itself allows the agent (``spec.allowedAgents``, set by whoever may write the secret).
Allowing an agent trusts everyone who may change it. ``services/secret_use.py`` applies this
when an Agent is admitted.
"""

from __future__ import annotations

import enum

from clawfleet.core.errors import Forbidden, NotVisible
from clawfleet.services.context import Principal


class Verb(enum.Enum):
    GET = "get"
    LIST = "list"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    USE = "use"  # hand a Secret's values to a program (services/secret_use.py)


ALL = frozenset(Verb)
READ = frozenset({Verb.GET, Verb.LIST})
WORK_KINDS = ("Agent", "Instance", "Task", "Run")

RULES: dict[str, dict[str, frozenset[Verb]]] = {
    "tenant-admin": {"*": ALL, "Tenant": frozenset({Verb.GET, Verb.LIST, Verb.UPDATE})},
    "operator": {**{kind: ALL for kind in WORK_KINDS}, "Audit": frozenset(), "*": READ},
    "developer": {
        "Task": ALL,
        "Run": ALL,
        **{kind: READ for kind in ("Agent", "Instance", "Project", "Tenant")},
    },
    "viewer": {"Audit": frozenset(), "*": READ},
}
ROLES = ("admin", "tenant-admin", "operator", "developer", "viewer", "runner", "team-leader")


def allows(role: str, verb: Verb, kind: str) -> bool:
    rules = RULES.get(role, {})
    return verb in rules.get(kind, rules.get("*", frozenset()))


def roles_at(principal: Principal, tenant: str, project: str | None) -> set[str]:
    """Roles the principal holds for (tenant, project); a tenant-wide binding covers every
    project, a project binding only its project (and only for project-level questions)."""
    return {
        b.role
        for b in principal.bindings
        if b.tenant == tenant and (b.project is None or b.project == project)
    }


def sees(principal: Principal, tenant: str, project: str | None) -> bool:
    """Whether ``principal`` holds any role where (tenant, project) lives. What it does not see
    does not exist for it: lookups by name or id treat such a record as missing, so the answer
    is the very one a name that exists nowhere gets."""
    return principal.is_admin or bool(tenant and roles_at(principal, tenant, project))


def permits(
    principal: Principal, verb: Verb, kind: str, tenant: str, project: str | None = None
) -> bool:
    """Whether ``authorize`` would let ``principal`` ``verb`` a ``kind`` there."""
    if principal.is_admin:
        return True
    return any(allows(role, verb, kind) for role in roles_at(principal, tenant, project))


def authorize(
    principal: Principal,
    verb: Verb,
    kind: str,
    tenant: str,
    project: str | None = None,
    *,
    what: str = "",
) -> None:
    """Raise NotVisible or Forbidden unless ``principal`` may ``verb`` a ``kind`` there.

    ``what`` names the resource for the error message ("agent 'x' in project 'y'")."""
    if principal.is_admin:
        return
    if not sees(principal, tenant, project):
        raise NotVisible(f"{what or kind.lower()} not found")
    roles = roles_at(principal, tenant, project)
    if not any(allows(role, verb, kind) for role in roles):
        raise Forbidden(
            f"{principal.name} may not {verb.value} {kind.lower()} resources here "
            f"(roles: {', '.join(sorted(roles))}); ask a tenant admin for a RoleBinding"
        )


def visible_scopes(principal: Principal, kind: str) -> list[tuple[str, str | None]] | None:
    """(tenant, project or None) pairs where ``principal`` may list ``kind``; None: everywhere."""
    if principal.is_admin:
        return None
    return sorted(
        {(b.tenant, b.project) for b in principal.bindings if allows(b.role, Verb.LIST, kind)},
        key=lambda s: (s[0], s[1] or ""),
    )


def list_scope(
    principal: Principal,
    kind: str,
    tenant: str,
    project: str | None,
    *,
    all_tenants: bool,
) -> tuple[str | None, str | None, list[tuple[str, str | None]] | None]:
    """What a listing covers: (tenant filter, project filter, scope filter), each None for "any".

    ``project`` None asks for the whole tenant; a principal with only project bindings then sees
    just its projects. Raises NotVisible/Forbidden like ``authorize``."""
    scopes = visible_scopes(principal, kind)
    if all_tenants:
        return None, None, scopes
    if scopes is None:
        return tenant, project, None
    if project is not None:
        authorize(principal, Verb.LIST, kind, tenant, project, what=f"project {project!r}")
        return tenant, project, None
    inside = [scope for scope in scopes if scope[0] == tenant]
    if not inside:
        if any(b.tenant == tenant for b in principal.bindings):
            raise Forbidden(f"{principal.name} may not list {kind.lower()} resources here")
        raise NotVisible(f"tenant {tenant!r} not found")
    return tenant, None, inside


def list_scope_for(
    principal: Principal,
    kind: str,
    tenant: str,
    project: str,
    *,
    all_tenants: bool,
    all_projects: bool,
) -> tuple[str | None, str | None, list[tuple[str, str | None]] | None]:
    """``list_scope`` for project-level kinds listed in the caller's tenant and project."""
    return list_scope(
        principal, kind, tenant, None if all_projects else project, all_tenants=all_tenants
    )
