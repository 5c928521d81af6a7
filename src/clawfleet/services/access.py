"""The one place that decides whether a principal may do a verb on a kind in a tenant.

Only the bootstrap admin exists so far; roles and bindings plug in here later, so handlers never
check permissions themselves.
"""

from __future__ import annotations

import enum

from clawfleet.core.errors import Forbidden
from clawfleet.services.context import Principal


class Verb(enum.Enum):
    GET = "get"
    LIST = "list"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


def authorize(principal: Principal, verb: Verb, kind: str, tenant: str) -> None:
    """Raise ``Forbidden`` unless ``principal`` may ``verb`` a ``kind`` in ``tenant``."""
    if principal.is_admin:
        return
    raise Forbidden(
        f"{principal.name!r} may not {verb.value} {kind.lower()} resources in tenant {tenant!r}"
    )


def visible_tenants(principal: Principal) -> list[str] | None:
    """Tenants a principal may list across; None means all of them."""
    if principal.is_admin:
        return None
    return [principal.tenant] if principal.tenant else []
