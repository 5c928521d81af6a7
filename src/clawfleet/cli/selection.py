"""Which resources `get` and `delete` mean, and where an empty selection looked.

A selection is written ``KIND [NAME...]``, ``KIND/NAME...`` (what ``-o name`` prints, so its
output can be fed back), or ``KIND,KIND`` for whole listings. When a listing comes back empty,
the message names the tenant and project the server looked in, and says when that tenant or
project does not exist (a few cheap reads, made only then).
"""

from __future__ import annotations

from dataclasses import dataclass

from clawfleet.cli.common import fail
from clawfleet.client import ApiError, ClawfleetClient
from clawfleet.domain.kinds import KindInfo, Scope, find_kind, kind_names

DEFAULT_SCOPE = "default"  # the server's default tenant and project (services/context.py)


@dataclass(frozen=True)
class Target:
    info: KindInfo
    name: str | None  # None: every resource of the kind (that the selector matches)

    @property
    def ref(self) -> str:
        return f"{self.info.kind.lower()}/{self.name}"


def find(kind: str) -> KindInfo:
    info = find_kind(kind)
    if info is None:
        fail(f"unknown kind {kind!r}; known kinds: {', '.join(kind_names())}", code=2)
    return info


def parse_targets(args: list[str], command: str) -> list[Target]:
    """``KIND [NAME...]``, ``KIND/NAME...`` or ``KIND,KIND`` as targets, in order."""
    if not args:
        fail(f"say what to {command}: clawfleet {command} KIND [NAME...] or KIND/NAME...", code=2)
    first, rest = args[0], args[1:]
    if "/" in first or any("/" in arg for arg in rest):
        if not all("/" in arg for arg in args):
            fail("give either KIND NAME... or KIND/NAME..., not both", code=2)
        targets = []
        for arg in args:
            kind, _, name = arg.partition("/")
            if not name:
                fail(f"{arg!r} names no resource; write KIND/NAME", code=2)
            targets.append(Target(find(kind), name))
        return targets
    kinds = [find(kind) for kind in first.split(",") if kind]
    if not kinds:
        fail(f"say which kind: clawfleet {command} KIND", code=2)
    if not rest:
        return [Target(info, None) for info in kinds]
    if len(kinds) > 1:
        fail(f"names go with one kind: clawfleet {command} KIND NAME...", code=2)
    return [Target(kinds[0], name) for name in rest]


def nothing_found(
    client: ClawfleetClient,
    info: KindInfo,
    *,
    selector: str | None = None,
    all_tenants: bool = False,
    all_projects: bool = False,
) -> str:
    """'No agents in tenant 'acme', project 'web'.' and, when it is so, that the project (or
    the tenant) does not exist."""
    what = f"No {info.plural}" + (f" matching {selector!r}" if selector else "")
    if info.scope is Scope.CLUSTER or all_tenants:
        return f"{what} you may see" + (
            " in any tenant." if info.scope is not Scope.CLUSTER else "."
        )
    tenant = client.config.tenant or client.whoami().get("tenant") or DEFAULT_SCOPE
    if info.scope is Scope.TENANT or all_projects:
        where = f"{what} in tenant {tenant!r}" + (" (all projects)" if all_projects else "")
        return where + _missing(client, tenant, None) + "."
    project = client.config.project or DEFAULT_SCOPE
    return (
        f"{what} in tenant {tenant!r}, project {project!r}"
        + _missing(client, tenant, project)
        + "."
    )


def _missing(client: ClawfleetClient, tenant: str, project: str | None) -> str:
    """': there is no tenant/project ...' when the scope itself is missing, else ''."""
    if project is not None and not _exists(client, "projects", project, tenant):
        if not _exists(client, "tenants", tenant):
            return f": there is no tenant {tenant!r} (list them with `clawfleet get tenants`)"
        return (
            f": there is no project {project!r} in tenant {tenant!r} (list them with "
            f"`clawfleet get projects -t {tenant}`)"
        )
    if project is None and not _exists(client, "tenants", tenant):
        return f": there is no tenant {tenant!r} (list them with `clawfleet get tenants`)"
    return ""


def _exists(client: ClawfleetClient, plural: str, name: str, tenant: str | None = None) -> bool:
    try:
        client.get(plural, name, tenant=tenant)
    except ApiError as exc:
        if exc.status == 404:
            return False
        raise
    return True
