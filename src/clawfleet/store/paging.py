"""Keyset pagination: one way to list a query page by page, never losing or repeating a row.

Every listing (resources, tasks, runs, instances) answers with this ``Page``: the items and the
cursor to pass back as ``continue``, or None on the last page.

A page ends at its last row's *whole* order key, and the next page starts strictly after that
key. Paging by the last order column alone (``name > cursor`` under an order by tenant, project,
name) drops every row of the next project whose name sorts before the cursor; that was B3. The
cursor is the key, JSON in URL-safe base64: opaque to clients, and checked when it comes back.
The order columns must be NOT NULL and unique together (end them with a unique column), and are
all ascending.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, and_, or_
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from clawfleet.core.errors import FieldError, InvalidInput

T = TypeVar("T")

# Ids and sequence numbers are BIGINT on PostgreSQL and INTEGER (8 bytes) on SQLite: no row has
# a larger one, and both drivers raise on one, so a cursor or a parameter past it is refused.
MAX_BIGINT = 2**63 - 1


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None  # None on the last page


def encode_cursor(key: Sequence[Any]) -> str:
    values = [{"at": v.isoformat()} if isinstance(v, datetime) else v for v in key]
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def _key_value(value: Any, kind: type) -> Any:
    """``value`` as a value of an order column of Python type ``kind``; ValueError if it cannot
    be one (a bound the database would refuse, or a wrong type that PostgreSQL would)."""
    if kind is datetime and isinstance(value, dict) and isinstance(value.get("at"), str):
        at = datetime.fromisoformat(value["at"])
        if at.tzinfo is None:
            raise ValueError("not a UTC time")
        return at.astimezone(UTC)
    if kind is int and type(value) is int and -MAX_BIGINT - 1 <= value <= MAX_BIGINT:
        return value
    if kind is str and isinstance(value, str) and "\x00" not in value:
        value.encode()  # a lone surrogate cannot be sent to either database
        return value
    raise ValueError(f"not a {kind.__name__} key")


def decode_cursor(cursor: str, kinds: Sequence[type]) -> list[Any]:
    """The order key in ``cursor``, one value per column of Python type ``kinds[i]``;
    InvalidInput (on ``continue``) if it is not one of ours."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(values, list) or len(values) != len(kinds):
            raise ValueError("not an order key")
        return [_key_value(value, kind) for value, kind in zip(values, kinds, strict=True)]
    except (binascii.Error, ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise InvalidInput(
            "invalid continue token; start the listing again without it",
            [FieldError("continue", "not a token this server issued", "invalid-cursor")],
        ) from exc


def after_key(columns: Sequence[ColumnElement[Any]], key: Sequence[Any]) -> ColumnElement[bool]:
    """SQL for "the order key of this row is greater than ``key``" (a lexicographic compare,
    spelled out so that it works the same on both databases)."""
    terms = [
        and_(*(earlier == value for earlier, value in zip(columns[:i], key, strict=False)),
             column > key[i])
        for i, column in enumerate(columns)
    ]  # fmt: skip
    return or_(*terms)


async def keyset_page(
    conn: AsyncConnection,
    query: Select[Any],
    order_columns: Sequence[ColumnElement[Any]],
    cursor: str | None,
    limit: int,
) -> tuple[list[Row[Any]], str | None]:
    """Up to ``limit`` rows of ``query`` in ``order_columns`` order, after ``cursor`` (from an
    earlier page; None for the first), and the cursor of the next page (None if this is the
    last). The columns must be selected by ``query``."""
    if cursor is not None:
        kinds = [column.type.python_type for column in order_columns]
        query = query.where(after_key(order_columns, decode_cursor(cursor, kinds)))
    rows = list((await conn.execute(query.order_by(*order_columns).limit(limit + 1))).all())
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_cursor([rows[-1]._mapping[column] for column in order_columns])
