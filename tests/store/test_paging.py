"""Keyset paging on both databases: every row exactly once, for any page size and key."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from clawfleet.core.errors import InvalidInput
from clawfleet.domain.instances import InstanceId
from clawfleet.store.db import Database
from clawfleet.store.paging import decode_cursor, encode_cursor, keyset_page
from clawfleet.store.repositories.instances import InstanceRepository
from clawfleet.store.tables import instances
from tests.store.test_instance_repository import NOW, make_instance


@pytest.mark.parametrize("limit", [1, 2, 3, 7])
async def test_pages_hold_every_row_once_with_a_time_in_the_key(db: Database, limit: int) -> None:
    async with db.write() as conn:
        for i in range(7):  # three share a created_at: the id breaks the tie
            base = make_instance(f"a-{i}", project=f"p{i % 2}")
            created = NOW + timedelta(seconds=min(i, 4))
            await InstanceRepository(conn).insert(
                dataclasses.replace(base, id=InstanceId(f"id-{i}"), created_at=created)
            )
    c = instances.c
    seen: list[str] = []
    cursor = None
    async with db.read() as conn:
        while True:
            rows, cursor = await keyset_page(
                conn, select(instances), (c.created_at, c.id), cursor, limit
            )
            assert len(rows) <= limit
            seen += [row.id for row in rows]
            if cursor is None:
                break
    assert seen == [f"id-{i}" for i in range(7)]


def test_a_cursor_holds_the_whole_key() -> None:
    key = ["t", "p", 3, NOW]
    assert decode_cursor(encode_cursor(key), (str, str, int, datetime)) == key


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-token",
        encode_cursor(["only-one"]),
        "e30",
        encode_cursor(["t", "p", 2**63]),
        encode_cursor(["t", "p", "3"]),
    ],
)
def test_a_cursor_that_is_not_ours_is_invalid_input(cursor: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        decode_cursor(cursor, (str, str, int))
    assert raised.value.errors[0].path == "continue"


@pytest.mark.parametrize(
    "at",
    [
        NOW.replace(tzinfo=None),  # naive: the store refuses it
        datetime.max.replace(tzinfo=timezone(-timedelta(hours=1))),  # past year 9999 in UTC
    ],
)
def test_a_time_in_a_cursor_must_be_a_utc_time(at: datetime) -> None:
    with pytest.raises(InvalidInput) as raised:
        decode_cursor(encode_cursor([at, "id-1"]), (datetime, str))
    assert raised.value.errors[0].code == "invalid-cursor"
