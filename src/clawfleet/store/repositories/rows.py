"""Column conversions shared by the dispatch repositories, and the scope filter of listings."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from clawfleet.domain.lifecycle import FailureKind


def failure_kind_of(text: str | None) -> FailureKind | None:
    """A stored failure kind; one this version does not know reads as the agent's own error."""
    if text is None:
        return None
    try:
        return FailureKind(text)
    except ValueError:
        return FailureKind.AGENT_ERROR


def as_dict(row: Any) -> dict[str, Any] | None:
    return dict(row._mapping) if row is not None else None


def as_dicts(rows: Iterable[Any]) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in rows]


def scope_clause(tenant: Any, project: Any, scopes: Iterable[tuple[str, str | None]]) -> Any:
    """SQL for "in one of these (tenant, project-or-any) scopes"; no scopes matches nothing."""
    from sqlalchemy import and_, false, or_

    terms = [and_(tenant == t, project == p) if p is not None else tenant == t for t, p in scopes]
    return or_(*terms) if terms else false()
