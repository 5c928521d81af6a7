"""Users, service accounts and refresh tokens."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from clawfleet.store.repositories.rows import as_dict, as_dicts
from clawfleet.store.tables import api_tokens, refresh_tokens, service_accounts, users


class IdentityRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def add_user(self, values: dict[str, Any]) -> None:
        await self.conn.execute(insert(users).values(**values))

    async def user(self, name: str) -> dict[str, Any] | None:
        return as_dict((await self.conn.execute(select(users).where(users.c.name == name))).first())

    async def user_by_id(self, user_id: str) -> dict[str, Any] | None:
        query = select(users).where(users.c.id == user_id)
        return as_dict((await self.conn.execute(query)).first())

    async def users(self) -> list[dict[str, Any]]:
        query = select(users.c.id, users.c.name, users.c.disabled, users.c.created_at)
        return as_dicts((await self.conn.execute(query.order_by(users.c.name))).all())

    async def update_user(self, user_id: str, values: dict[str, Any]) -> None:
        await self.conn.execute(update(users).where(users.c.id == user_id).values(**values))

    async def add_refresh(self, values: dict[str, Any]) -> None:
        await self.conn.execute(insert(refresh_tokens).values(**values))

    async def refresh(self, token_hash: str) -> dict[str, Any] | None:
        query = (
            select(refresh_tokens)
            .where(refresh_tokens.c.token_hash == token_hash)
            .with_for_update()  # SQLite leaves it out; its writes are serialized anyway
        )
        return as_dict((await self.conn.execute(query)).first())

    async def revoke_refresh(self, refresh_id: str, now: datetime) -> None:
        await self.conn.execute(
            update(refresh_tokens).where(refresh_tokens.c.id == refresh_id).values(revoked_at=now)
        )

    async def end_user_sessions(self, user_id: str, now: datetime) -> None:
        """Revoke the user's refresh tokens and move its session generation on, which
        refuses every access token issued so far, even after the user is enabled again."""
        c = refresh_tokens.c
        await self.conn.execute(
            update(refresh_tokens)
            .where(c.user_id == user_id, c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        await self.conn.execute(
            update(users)
            .where(users.c.id == user_id)
            .values(session_generation=users.c.session_generation + 1)
        )

    async def add_service_account(self, values: dict[str, Any]) -> None:
        await self.conn.execute(insert(service_accounts).values(**values))

    async def service_account(
        self, tenant: str, name: str, *, for_update: bool = False
    ) -> dict[str, Any] | None:
        c = service_accounts.c
        query = select(service_accounts).where(c.tenant == tenant, c.name == name)
        if for_update:
            query = query.with_for_update()
        return as_dict((await self.conn.execute(query)).first())

    async def service_accounts(self, tenant: str | None) -> list[dict[str, Any]]:
        c = service_accounts.c
        query = select(service_accounts).order_by(c.tenant, c.name)
        if tenant is not None:
            query = query.where(c.tenant == tenant)
        return as_dicts((await self.conn.execute(query)).all())

    async def keys_of(self, principal: str) -> list[dict[str, Any]]:
        c = api_tokens.c
        query = (
            select(c.id, c.name, c.created_at, c.expires_at, c.revoked_at)
            .where(c.principal == principal)
            .order_by(c.created_at)
        )
        return as_dicts((await self.conn.execute(query)).all())

    async def delete_service_accounts(self, tenant: str) -> None:
        await self.conn.execute(delete(service_accounts).where(service_accounts.c.tenant == tenant))

    async def delete_keys_of(self, principals: Sequence[str]) -> list[str]:
        """Delete every API key of these principals; returns the ids of the keys deleted."""
        c = api_tokens.c
        query = select(c.id).where(c.principal.in_(principals)).order_by(c.created_at)
        ids = [str(row.id) for row in (await self.conn.execute(query)).all()]
        if ids:
            await self.conn.execute(delete(api_tokens).where(c.id.in_(ids)))
        return ids
