"""Identities: the users who sign in with a password and the service accounts of a tenant.

Cluster admins create, disable and enable users; tenant admins create service accounts and mint
and revoke their API keys (shown once, stored hashed by ``TokenService``). Passwords are argon2
hashes. Signing in and checking tokens is ``services/sessions.py``; what an identity may do
comes from RoleBindings (``services/bindings.py``).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from argon2 import PasswordHasher
from sqlalchemy.ext.asyncio import AsyncConnection

from clawfleet.core.clock import Clock
from clawfleet.core.errors import AlreadyExists, FieldError, InvalidInput, NotFound
from clawfleet.domain.names import name_problem
from clawfleet.domain.resources import ResourceKey
from clawfleet.services.audit import AuditLog
from clawfleet.services.context import RequestContext
from clawfleet.services.policy import Verb, authorize, list_scope
from clawfleet.services.sessions import SessionService
from clawfleet.services.tokens import TokenService
from clawfleet.services.views import format_time
from clawfleet.store.db import Database
from clawfleet.store.repositories.identity import IdentityRepository
from clawfleet.store.repositories.resources import ResourceRepository


def _check_password(password: str) -> None:
    if len(password) < 12 or len(password) > 1024:
        raise InvalidInput(
            "a password needs 12 to 1024 characters",
            [FieldError("password", "must be 12 to 1024 characters long", "weak-password")],
        )


def _check_name(field: str, name: str) -> None:
    if problem := name_problem(name):
        raise InvalidInput(
            f"invalid {field} {name[:80]!r}: {problem}", [FieldError(field, problem)]
        )


class IdentityService:
    def __init__(
        self, db: Database, clock: Clock, tokens: TokenService, sessions: SessionService
    ) -> None:
        self.db = db
        self.clock = clock
        self.tokens = tokens
        self.sessions = sessions
        self.hasher = PasswordHasher()
        self.audit = AuditLog(db, clock)

    # -- users (cluster admins manage them) ---------------------------------------------------

    async def create_user(self, ctx: RequestContext, name: str, password: str) -> dict[str, Any]:
        await self.audit.guard(ctx, Verb.CREATE, "User", "", None, name)
        _check_name("name", name)
        _check_password(password)
        digest = await asyncio.to_thread(self.hasher.hash, password)
        now = self.clock.now()
        row = {"id": str(uuid.uuid4()), "name": name, "password_hash": digest, "disabled": 0,
               "created_at": now, "updated_at": now}  # fmt: skip
        async with self.db.write() as conn:
            repo = IdentityRepository(conn)
            if await repo.user(name) is not None:
                raise AlreadyExists(f"user {name!r} already exists")
            await repo.add_user(row)
            await self.audit.record(conn, ctx, "create", "User", "", None, name)
        return _user_view(row)

    async def list_users(self, ctx: RequestContext) -> list[dict[str, Any]]:
        authorize(ctx.principal, Verb.LIST, "User", "")
        async with self.db.read() as conn:
            return [_user_view(row) for row in await IdentityRepository(conn).users()]

    async def set_user_disabled(
        self, ctx: RequestContext, name: str, disabled: bool
    ) -> dict[str, Any]:
        await self.audit.guard(ctx, Verb.UPDATE, "User", "", None, name)
        now = self.clock.now()
        async with self.db.write() as conn:
            repo = IdentityRepository(conn)
            user = await repo.user(name)
            if user is None:
                raise NotFound(f"user {name!r} not found; list users with `clawfleet user list`")
            await repo.update_user(user["id"], {"disabled": int(disabled), "updated_at": now})
            if disabled:
                await repo.end_user_sessions(user["id"], now)
            verb = "disable" if disabled else "enable"
            await self.audit.record(conn, ctx, verb, "User", "", None, name)
            user.update(disabled=int(disabled))
        self.sessions.forget_user(user["id"])
        return _user_view(user)

    # -- service accounts (tenant admins manage them) ---------------------------------------

    async def create_service_account(
        self, ctx: RequestContext, name: str, description: str = ""
    ) -> dict[str, Any]:
        tenant = ctx.default_tenant
        await self.audit.guard(
            ctx, Verb.CREATE, "ServiceAccount", tenant, None, name, what=f"tenant {tenant!r}"
        )
        _check_name("name", name)
        row = {"id": str(uuid.uuid4()), "tenant": tenant, "name": name,
               "description": description[:1024], "created_at": self.clock.now()}  # fmt: skip
        async with self.db.write() as conn:
            await _require_tenant(conn, tenant)
            repo = IdentityRepository(conn)
            if await repo.service_account(tenant, name) is not None:
                raise AlreadyExists(f"service account {name!r} already exists in tenant {tenant!r}")
            await repo.add_service_account(row)
            await self.audit.record(conn, ctx, "create", "ServiceAccount", tenant, None, name)
        return _sa_view(row, [])

    async def list_service_accounts(
        self, ctx: RequestContext, *, all_tenants: bool = False
    ) -> list[dict[str, Any]]:
        tenant, _, scopes = list_scope(
            ctx.principal, "ServiceAccount", ctx.default_tenant, None, all_tenants=all_tenants
        )
        async with self.db.read() as conn:
            repo = IdentityRepository(conn)
            rows = await repo.service_accounts(tenant)
            visible = {t for t, _ in scopes} if scopes is not None else None
            return [
                _sa_view(
                    row, await repo.keys_of(service_account_principal(row["tenant"], row["name"]))
                )
                for row in rows
                if visible is None or row["tenant"] in visible
            ]

    async def _service_account(self, ctx: RequestContext, name: str, verb: Verb) -> dict[str, Any]:
        tenant = ctx.default_tenant
        what = f"service account {name!r} in tenant {tenant!r}"
        await self.audit.guard(ctx, verb, "ServiceAccount", tenant, None, name, what=what)
        async with self.db.read() as conn:
            row = await IdentityRepository(conn).service_account(tenant, name)
        if row is None:
            raise NotFound(f"{what} not found")
        return row

    async def mint_key(
        self, ctx: RequestContext, name: str, expires_in: int | None
    ) -> dict[str, Any]:
        row = await self._service_account(ctx, name, Verb.UPDATE)
        expires_at = self.clock.now() + timedelta(seconds=expires_in) if expires_in else None
        async with self.db.write() as conn:
            # Locked again in the key's transaction: a tenant delete in between would otherwise
            # leave a key for an account that is gone, to pass to a later one of the same name.
            repo = IdentityRepository(conn)
            if await repo.service_account(row["tenant"], name, for_update=True) is None:
                raise NotFound(f"service account {name!r} in tenant {row['tenant']!r} not found")
            key_id, key = await self.tokens.mint_key(
                conn,
                name=f"key:{row['tenant']}/{row['name']}",
                principal=service_account_principal(row["tenant"], row["name"]),
                role="serviceaccount",
                tenant=row["tenant"],
                expires_at=expires_at,
            )
            await self.audit.record(
                conn, ctx, "mint-key", "ServiceAccount", row["tenant"], None, name, {"key": key_id}
            )
        return {
            "id": key_id,
            "key": key,
            "expiresAt": format_time(expires_at) if expires_at else None,
            "note": "store this key now: it is not shown again",
        }

    async def revoke_key(self, ctx: RequestContext, name: str, key_id: str) -> None:
        row = await self._service_account(ctx, name, Verb.UPDATE)
        async with self.db.read() as conn:
            keys = await IdentityRepository(conn).keys_of(
                service_account_principal(row["tenant"], row["name"])
            )
        if key_id not in {key["id"] for key in keys}:
            raise NotFound(f"key {key_id!r} of service account {name!r} not found")
        await self.tokens.revoke(key_id)
        async with self.db.write() as conn:
            await self.audit.record(
                conn,
                ctx,
                "revoke-key",
                "ServiceAccount",
                row["tenant"],
                None,
                name,
                {"key": key_id},
            )


async def _require_tenant(conn: AsyncConnection, tenant: str) -> None:
    """Refuse a service account in a tenant that does not exist. Left in place, it would wait
    for a later tenant of that name and gain its bindings. The tenant row is locked, so a
    tenant delete (which deletes its service accounts) cannot pass this check unseen."""
    if await ResourceRepository(conn).get(ResourceKey("Tenant", "", "", tenant), for_update=True):
        return
    raise NotFound(
        f"tenant {tenant!r} not found; create the tenant first (`clawfleet get tenants`)"
    )


def service_account_principal(tenant: str, name: str) -> str:
    """The principal of a service account: the name its API keys authenticate as."""
    return f"serviceaccount:{tenant}/{name}"


def _user_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": row["name"],
        "disabled": bool(row["disabled"]),
        "createdAt": format_time(row["created_at"]),
    }


def _sa_view(row: dict[str, Any], keys: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": row["name"],
        "tenant": row["tenant"],
        "description": row["description"],
        "createdAt": format_time(row["created_at"]),
        "keys": [
            {"id": k["id"], "createdAt": format_time(k["created_at"]),
             "expiresAt": format_time(k["expires_at"]) if k["expires_at"] else None,
             "revoked": k["revoked_at"] is not None}
            for k in keys
        ],
    }  # fmt: skip
