"""Leader leases: one holder per name until it expires or is renewed."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from clawfleet.store.tables import leases


class LeaseRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def acquire(self, name: str, holder: str, now: datetime, ttl: float) -> bool:
        """Take or renew the lease; True if ``holder`` holds it afterwards."""
        until = now + timedelta(seconds=ttl)
        c = leases.c
        renewed = await self.conn.execute(
            update(leases)
            .where(c.name == name, (c.holder == holder) | (c.expires_at < now))
            .values(holder=holder, expires_at=until)
        )
        if renewed.rowcount == 1:
            return True
        current = (await self.conn.execute(select(c.holder).where(c.name == name))).first()
        if current is not None:
            return False
        try:
            async with self.conn.begin_nested():
                await self.conn.execute(
                    insert(leases).values(name=name, holder=holder, expires_at=until)
                )
        except IntegrityError:
            return False
        return True
