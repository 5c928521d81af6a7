"""Quotas on tenants and projects, checked when a resource is admitted.

A quota is part of the Tenant or Project spec. Each dimension has a usage function over the
store and a contribution function of one resource's spec, so a write is checked as "usage now,
minus what the resource held before, plus what it asks for" against the tenant's and the
project's limits. New dimensions (the LLM gateway's token and cost budgets) register here.
``concurrentRuns`` is enforced where runs are claimed (``services/dispatch.py``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from clawfleet.core.errors import QuotaExceeded
from clawfleet.domain.quantities import parse_quantity
from clawfleet.domain.resources import ResourceKey, ResourceRecord
from clawfleet.domain.selectors import Selector
from clawfleet.store.repositories.resources import ResourceRepository


def _replicas(spec: dict[str, Any]) -> int:
    return 0 if spec.get("state") == "Stopped" else int(spec.get("replicas", 1))


def _per_replica(field: str) -> Callable[[str, dict[str, Any], dict[str, Any]], float]:
    def contribution(kind: str, spec: dict[str, Any], status: dict[str, Any]) -> float:
        if kind != "Agent":
            return 0.0
        amount = (spec.get("resources") or {}).get(field)
        return _replicas(spec) * parse_quantity(amount)

    return contribution


def _stored(kind: str, spec: dict[str, Any], status: dict[str, Any]) -> float:
    size = len(json.dumps(spec, separators=(",", ":")))
    if kind == "Secret":
        size += sum(int(k.get("size", 0)) for k in status.get("keys", []))
    return float(size)


@dataclass(frozen=True)
class Dimension:
    name: str  # as in the spec's quota (camelCase)
    contribution: Callable[[str, dict[str, Any], dict[str, Any]], float]
    unit: str = ""


DIMENSIONS: dict[str, Dimension] = {
    d.name: d
    for d in (
        Dimension("agents", lambda kind, spec, status: 1.0 if kind == "Agent" else 0.0),
        Dimension(
            "instances",
            lambda kind, spec, status: float(_replicas(spec)) if kind == "Agent" else 0.0,
        ),
        Dimension("cpu", _per_replica("cpu"), "CPUs"),
        Dimension("memory", _per_replica("memory"), "bytes"),
        Dimension("storedBytes", _stored, "bytes"),
    )
}
COUNTED_KINDS = ("Agent", "Secret")


async def _records(conn: AsyncConnection, tenant: str, project: str | None) -> list[ResourceRecord]:
    repo = ResourceRepository(conn)
    found: list[ResourceRecord] = []
    for kind in COUNTED_KINDS:
        found += await repo.list(
            kind, tenant=tenant, project=project, selector=Selector(), after=None, limit=100_000
        )
    return found


async def usage(conn: AsyncConnection, tenant: str, project: str | None) -> dict[str, float]:
    totals = dict.fromkeys(DIMENSIONS, 0.0)
    for record in await _records(conn, tenant, project):
        for name, dimension in DIMENSIONS.items():
            totals[name] += dimension.contribution(record.key.kind, record.spec, record.status)
    return totals


async def limits(conn: AsyncConnection, tenant: str, project: str | None) -> dict[str, Any]:
    repo = ResourceRepository(conn)
    key = (
        ResourceKey("Project", tenant, "", project)
        if project
        else ResourceKey("Tenant", "", "", tenant)
    )
    record = await repo.get(key)
    return dict((record.spec.get("quota") or {}) if record else {})


def _fmt(value: float) -> str:
    return f"{value:g}"


async def check(
    conn: AsyncConnection,
    key: ResourceKey,
    before: tuple[dict[str, Any], dict[str, Any]] | None,
    after: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    """Raise QuotaExceeded if writing ``after`` (spec, status) over ``before`` breaks a quota."""
    if key.kind not in COUNTED_KINDS:
        return
    delta = {
        name: d.contribution(key.kind, *after)
        - (d.contribution(key.kind, *before) if before else 0.0)
        for name, d in DIMENSIONS.items()
    }
    growing = {name: amount for name, amount in delta.items() if amount > 0}
    if not growing:
        return
    for project in (None, key.project):
        quota = await limits(conn, key.tenant, project)
        checked = {name: quota[name] for name in growing if quota.get(name) is not None}
        if not checked:
            continue
        used = await usage(conn, key.tenant, project)
        for name, limit in checked.items():
            maximum = parse_quantity(limit)
            if used[name] + growing[name] > maximum:
                where = f"project {project!r}" if project else f"tenant {key.tenant!r}"
                raise QuotaExceeded(
                    f"quota exceeded: {where} allows {name} {limit}; {_fmt(used[name])} in use, "
                    f"and this change asks for {_fmt(growing[name])} more. Raise the quota in the "
                    f"{'Project' if project else 'Tenant'} spec or free some first"
                )


async def report(conn: AsyncConnection, tenant: str, project: str | None) -> dict[str, Any]:
    """Quota and usage side by side, for `describe tenant` and `describe project`."""
    quota = await limits(conn, tenant, project)
    used = await usage(conn, tenant, project)
    return {name: {"used": round(used[name], 3), "limit": quota.get(name)} for name in DIMENSIONS}
