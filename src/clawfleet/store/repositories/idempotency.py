"""First answers to create requests that carried an ``Idempotency-Key``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from clawfleet.store.tables import idempotency_keys


@dataclass(frozen=True)
class StoredAnswer:
    request_hash: str
    status_code: int
    body: str


class IdempotencyRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def find(self, principal: str, key: str, newer_than: datetime) -> StoredAnswer | None:
        c = idempotency_keys.c
        row = (
            await self.conn.execute(
                select(c.request_hash, c.status_code, c.body).where(
                    c.principal == principal, c.key == key, c.created_at > newer_than
                )
            )
        ).first()
        return StoredAnswer(*row) if row else None

    async def save(self, principal: str, key: str, answer: StoredAnswer, now: datetime) -> None:
        c = idempotency_keys.c
        # An expired entry with the same key may still be there; replace it.
        await self.conn.execute(
            delete(idempotency_keys).where(c.principal == principal, c.key == key)
        )
        await self.conn.execute(
            insert(idempotency_keys).values(
                principal=principal,
                key=key,
                request_hash=answer.request_hash,
                status_code=answer.status_code,
                body=answer.body,
                created_at=now,
            )
        )

    async def purge(self, older_than: datetime) -> int:
        """Forget answers older than the horizon (indexed on created_at)."""
        result = await self.conn.execute(
            delete(idempotency_keys).where(idempotency_keys.c.created_at <= older_than)
        )
        return int(result.rowcount)
