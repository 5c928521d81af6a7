"""Quotas on tenants and projects, checked when a resource is admitted.

A quota is part of the Tenant or Project spec. Each dimension has a usage function over the
store and a contribution function of one resource's spec, so a write is checked as "usage now,
minus what the resource held before, plus what it asks for" against the tenant's and the
project's limits. New dimensions (the LLM gateway's token and cost budgets) register here.
``concurrentRuns`` is enforced where runs are claimed (``services/dispatch.py``).

Amounts are exact decimals (``domain.quantities``), read back through ``read_quantity``: a value
stored before quantities had bounds counts as the maximum, so no stored record can turn a sum
into infinity or NaN (which once let every check pass) or make a usage report fail.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from clawfleet.core.errors import QuotaExceeded
from clawfleet.domain.quantities import read_quantity
from clawfleet.domain.resources import ResourceKey, ResourceRecord
from clawfleet.domain.selectors import Selector
from clawfleet.store.repositories.resources import ResourceRepository

Contribution = Callable[[str, dict[str, Any], dict[str, Any]], Decimal]


def _replicas(spec: dict[str, Any]) -> Decimal:
    return Decimal(0) if spec.get("state") == "Stopped" else read_quantity(spec.get("replicas", 1))


def _per_replica(field: str) -> Contribution:
    def contribution(kind: str, spec: dict[str, Any], status: dict[str, Any]) -> Decimal:
        if kind != "Agent":
            return Decimal(0)
        amount = (spec.get("resources") or {}).get(field)
        return _replicas(spec) * read_quantity(amount)

    return contribution


def _stored(kind: str, spec: dict[str, Any], status: dict[str, Any]) -> Decimal:
    size = len(json.dumps(spec, separators=(",", ":")))
    if kind == "Secret":
        size += sum(int(k.get("size", 0)) for k in status.get("keys", []))
    return Decimal(size)


def _agents(kind: str, spec: dict[str, Any], status: dict[str, Any]) -> Decimal:
    return Decimal(1 if kind == "Agent" else 0)


def _instances(kind: str, spec: dict[str, Any], status: dict[str, Any]) -> Decimal:
    return _replicas(spec) if kind == "Agent" else Decimal(0)


@dataclass(frozen=True)
class Dimension:
    name: str  # as in the spec's quota (camelCase)
    contribution: Contribution
    unit: str = ""


DIMENSIONS: dict[str, Dimension] = {
    d.name: d
    for d in (
        Dimension("agents", _agents),
        Dimension("instances", _instances),
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


async def usage(conn: AsyncConnection, tenant: str, project: str | None) -> dict[str, Decimal]:
    totals = dict.fromkeys(DIMENSIONS, Decimal(0))
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


def _fmt(value: Decimal) -> str:
    return format(value.normalize(), "f")


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
        - (d.contribution(key.kind, *before) if before else Decimal(0))
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
            maximum = read_quantity(limit)
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
    return {
        name: {"used": float(round(used[name], 3)), "limit": quota.get(name)} for name in DIMENSIONS
    }
