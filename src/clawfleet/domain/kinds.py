"""The resource kinds the API serves and how each is scoped.

A kind is cluster-scoped (Tenant), tenant-scoped (Project) or project-scoped (everything else).
The scope decides which of ``tenant``/``project`` a resource's metadata carries and which
parent must exist before it can be created.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Scope(enum.Enum):
    CLUSTER = "cluster"
    TENANT = "tenant"
    PROJECT = "project"


@dataclass(frozen=True)
class KindInfo:
    kind: str
    plural: str
    scope: Scope
    aliases: tuple[str, ...] = ()


TENANT = KindInfo("Tenant", "tenants", Scope.CLUSTER, ("tenant",))
PROJECT = KindInfo("Project", "projects", Scope.TENANT, ("project", "proj"))
ROLE_BINDING = KindInfo("RoleBinding", "rolebindings", Scope.TENANT, ("rolebinding", "rb"))
SECRET = KindInfo("Secret", "secrets", Scope.PROJECT, ("secret",))
AGENT = KindInfo("Agent", "agents", Scope.PROJECT, ("agent", "ag"))

ALL_KINDS: tuple[KindInfo, ...] = (TENANT, PROJECT, ROLE_BINDING, SECRET, AGENT)

# Kinds the system writes (read-mostly): listed and shown like the others, never applied.
TASK = KindInfo("Task", "tasks", Scope.PROJECT, ("task",))
RUN = KindInfo("Run", "runs", Scope.PROJECT, ("run",))
INSTANCE = KindInfo("Instance", "instances", Scope.PROJECT, ("instance", "inst"))
SYSTEM_KINDS: tuple[KindInfo, ...] = (TASK, RUN, INSTANCE)

# Order in which `apply -f` creates kinds (parents first); `delete -f` uses the reverse.
APPLY_ORDER: dict[str, int] = {info.kind: index for index, info in enumerate(ALL_KINDS)}

_BY_NAME: dict[str, KindInfo] = {}
for _info in (*ALL_KINDS, *SYSTEM_KINDS):
    for _name in (_info.kind.lower(), _info.plural, *_info.aliases):
        _BY_NAME[_name] = _info


def find_kind(name: str) -> KindInfo | None:
    """Look a kind up by its name, plural or alias, case-insensitively."""
    return _BY_NAME.get(name.lower())


def kind_names() -> list[str]:
    return [info.plural for info in (*ALL_KINDS, *SYSTEM_KINDS)]
