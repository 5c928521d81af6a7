"""API tokens, stored as SHA-256 hashes only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from clawfleet.store.tables import api_tokens


@dataclass(frozen=True)
class TokenRow:
    id: str
    name: str
    principal: str
    role: str
    tenant: str
    expires_at: datetime | None
    revoked_at: datetime | None


class TokenRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def find_by_hash(self, token_hash: str) -> TokenRow | None:
        c = api_tokens.c
        row = (
            await self.conn.execute(
                select(
                    c.id, c.name, c.principal, c.role, c.tenant, c.expires_at, c.revoked_at
                ).where(c.token_hash == token_hash)
            )
        ).first()
        return TokenRow(*row) if row else None

    async def find_by_name(self, name: str) -> TokenRow | None:
        c = api_tokens.c
        row = (
            await self.conn.execute(
                select(
                    c.id, c.name, c.principal, c.role, c.tenant, c.expires_at, c.revoked_at
                ).where(c.name == name, c.revoked_at.is_(None))
            )
        ).first()
        return TokenRow(*row) if row else None

    async def add(
        self,
        *,
        id: str,
        name: str,
        token_hash: str,
        principal: str,
        role: str,
        tenant: str,
        now: datetime,
        expires_at: datetime | None = None,
    ) -> None:
        await self.conn.execute(
            insert(api_tokens).values(
                id=id,
                name=name,
                token_hash=token_hash,
                principal=principal,
                role=role,
                tenant=tenant,
                created_at=now,
                expires_at=expires_at,
            )
        )

    async def revoke(self, id: str, now: datetime) -> None:
        await self.conn.execute(
            update(api_tokens).where(api_tokens.c.id == id).values(revoked_at=now)
        )
