"""Encrypted secret values, versioned. This module never sees plaintext."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from clawfleet.domain.ids import Uid
from clawfleet.store.tables import secret_versions


class SecretVersionRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def current(self, uid: Uid) -> tuple[int, bytes] | None:
        c = secret_versions.c
        row = (
            await self.conn.execute(
                select(c.version, c.ciphertext)
                .where(c.uid == uid)
                .order_by(c.version.desc())
                .limit(1)
            )
        ).first()
        return (int(row.version), bytes(row.ciphertext)) if row else None

    async def add(self, uid: Uid, ciphertext: bytes, now: datetime) -> int:
        c = secret_versions.c
        latest = (
            await self.conn.execute(select(func.max(c.version)).where(c.uid == uid))
        ).scalar_one()
        version = int(latest or 0) + 1
        await self.conn.execute(
            insert(secret_versions).values(
                uid=uid, version=version, ciphertext=ciphertext, created_at=now
            )
        )
        return version

    async def delete_all(self, uid: Uid) -> None:
        await self.conn.execute(delete(secret_versions).where(secret_versions.c.uid == uid))
