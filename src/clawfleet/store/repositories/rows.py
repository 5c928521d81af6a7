"""Row ↔ dict helpers shared by the dispatch repositories (rows are plain mappings here)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def as_dict(row: Any) -> dict[str, Any] | None:
    return dict(row._mapping) if row is not None else None


def as_dicts(rows: Iterable[Any]) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in rows]
