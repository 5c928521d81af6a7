"""Identity: users who sign in with a password, service accounts with API keys, and the one
function that turns a bearer token into a principal.

Passwords are argon2 hashes. A login returns a short-lived signed access token (JWT, HS256,
key derived from the secret key so every replica shares it) and an opaque refresh token, stored
hashed and replaced on every refresh. Failed sign-ins are throttled per user name and per client
address, and say nothing about which part was wrong.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections import deque
from datetime import datetime, timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from clawfleet.core.clock import Clock
from clawfleet.core.errors import (
    AlreadyExists,
    FieldError,
    InvalidInput,
    NotFound,
    RateLimited,
    Unauthenticated,
)
from clawfleet.domain.names import name_problem
from clawfleet.services.audit import AuditLog
from clawfleet.services.bindings import BindingIndex
from clawfleet.services.context import Principal, RequestContext
from clawfleet.services.policy import Verb, authorize, list_scope
from clawfleet.services.secret_box import SecretBox
from clawfleet.services.tokens import TOKEN_PREFIX, TokenService, hash_token
from clawfleet.services.views import format_time
from clawfleet.store.db import Database
from clawfleet.store.repositories.identity import IdentityRepository

ACCESS_SECONDS = 15 * 60
REFRESH_SECONDS = 30 * 24 * 3600
REFRESH_PREFIX = "cf_r_"  # shaped like a token, so log redaction always catches it
LOGIN_ATTEMPTS = 5  # failures per window, per user name and per client address
LOGIN_WINDOW = 60.0
BAD_CREDENTIALS = "invalid user name or password"


class LoginThrottle:
    """Sliding-window count of failed sign-ins per key (user name, client address)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}

    def check(self, *keys: str) -> None:
        now = self.clock.monotonic()
        for key in keys:
            window = self._failures.get(key)
            while window and now - window[0] > LOGIN_WINDOW:
                window.popleft()
            if window and len(window) >= LOGIN_ATTEMPTS:
                raise RateLimited(
                    "too many failed sign-ins; wait before trying again",
                    retry_after=LOGIN_WINDOW - (now - window[0]),
                )

    def failed(self, *keys: str) -> None:
        now = self.clock.monotonic()
        if len(self._failures) > 100_000:
            self._failures.clear()
        for key in keys:
            self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, *keys: str) -> None:
        for key in keys:
            self._failures.pop(key, None)


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
        self,
        db: Database,
        clock: Clock,
        tokens: TokenService,
        bindings: BindingIndex,
        box: SecretBox,
    ) -> None:
        self.db = db
        self.clock = clock
        self.tokens = tokens
        self.bindings = bindings
        self.hasher = PasswordHasher()
        self.throttle = LoginThrottle(clock)
        self._signing_key = box.derive("sessions")
        self._users: dict[str, tuple[float, bool]] = {}  # user id -> (checked until, enabled)
        self.audit = AuditLog(db, clock)
        self._dummy: str | None = None  # a hash to verify against for unknown users

    # -- authentication of every request -------------------------------------------------

    async def authenticate(self, token: str) -> Principal:
        """The principal behind a bearer token (API key, runner token or access token)."""
        if token.startswith(TOKEN_PREFIX):
            principal = await self.tokens.authenticate(token)
        else:
            principal = await self._verify_access(token)
        return await self.bindings.attach(principal)

    async def _verify_access(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self._signing_key,
                algorithms=["HS256"],
                issuer="clawfleet",
                # PyJWT would compare the times with the real time; ours is the clock's.
                options={
                    "require": ["exp", "iat", "sub", "uid", "typ"],
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.PyJWTError as exc:
            raise Unauthenticated("invalid token") from exc
        issued, expires = claims["iat"], claims["exp"]
        if not isinstance(issued, int) or not isinstance(expires, int):
            raise Unauthenticated("invalid token")
        now = self.clock.now().timestamp()
        if expires <= now:
            raise Unauthenticated("session expired; sign in again (`clawfleet login`)")
        if issued > now or claims.get("typ") != "access":
            raise Unauthenticated("invalid token")
        if not await self._user_enabled(str(claims["uid"])):
            raise Unauthenticated("invalid token")
        return Principal(name=f"user:{claims['sub']}", role="user", token_id=str(claims["uid"]))

    async def _user_enabled(self, user_id: str) -> bool:
        cached = self._users.get(user_id)
        if cached and cached[0] > self.clock.monotonic():
            return cached[1]
        async with self.db.read() as conn:
            row = await IdentityRepository(conn).user_by_id(user_id)
        enabled = row is not None and not row["disabled"]
        self._users[user_id] = (self.clock.monotonic() + 5.0, enabled)
        return enabled

    # -- sessions --------------------------------------------------------------------------

    def _access_token(self, user: dict[str, Any]) -> str:
        now = int(self.clock.now().timestamp())
        claims = {"iss": "clawfleet", "sub": user["name"], "uid": user["id"], "typ": "access",
                  "iat": now, "exp": now + ACCESS_SECONDS}  # fmt: skip
        return jwt.encode(claims, self._signing_key, algorithm="HS256")

    async def _session(self, conn: Any, user: dict[str, Any], now: datetime) -> dict[str, Any]:
        refresh = REFRESH_PREFIX + secrets.token_urlsafe(32)
        await IdentityRepository(conn).add_refresh({
            "id": str(uuid.uuid4()), "user_id": user["id"], "token_hash": hash_token(refresh),
            "expires_at": now + timedelta(seconds=REFRESH_SECONDS), "created_at": now,
        })  # fmt: skip
        return {
            "accessToken": self._access_token(user),
            "refreshToken": refresh,
            "tokenType": "Bearer",
            "expiresIn": ACCESS_SECONDS,
            "user": user["name"],
        }

    async def login(self, name: str, password: str, client: str) -> dict[str, Any]:
        keys = (f"user:{name.lower()[:63]}", f"addr:{client}")
        self.throttle.check(*keys)
        async with self.db.read() as conn:
            user = await IdentityRepository(conn).user(name)
        stored = user["password_hash"] if user else self._dummy_hash()
        try:
            await asyncio.to_thread(self.hasher.verify, stored, password)
            ok = user is not None and not user["disabled"]
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            ok = False
        if not ok or user is None:
            self.throttle.failed(*keys)
            raise Unauthenticated(BAD_CREDENTIALS)
        self.throttle.succeeded(*keys)
        now = self.clock.now()
        async with self.db.write() as conn:
            return await self._session(conn, user, now)

    def _dummy_hash(self) -> str:
        # Unknown users cost as much as known ones, so timing reveals nothing.
        if self._dummy is None:
            self._dummy = self.hasher.hash(secrets.token_hex(16))
        return self._dummy

    async def refresh(self, refresh_token: str) -> dict[str, Any]:
        now = self.clock.now()
        async with self.db.write() as conn:
            repo = IdentityRepository(conn)
            row = await repo.refresh(hash_token(refresh_token))
            if row is None or row["revoked_at"] is not None or row["expires_at"] <= now:
                raise Unauthenticated("invalid or expired refresh token; sign in again")
            user = await repo.user_by_id(row["user_id"])
            if user is None or user["disabled"]:
                raise Unauthenticated("invalid or expired refresh token; sign in again")
            await repo.revoke_refresh(row["id"], now)
            return await self._session(conn, user, now)

    async def logout(self, refresh_token: str) -> None:
        now = self.clock.now()
        async with self.db.write() as conn:
            repo = IdentityRepository(conn)
            row = await repo.refresh(hash_token(refresh_token))
            if row is not None:
                await repo.revoke_refresh(row["id"], now)

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
                await repo.revoke_user_sessions(user["id"], now)
            verb = "disable" if disabled else "enable"
            await self.audit.record(conn, ctx, verb, "User", "", None, name)
            user.update(disabled=int(disabled))
        self._users.pop(user["id"], None)
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
        key_id, key = await self.tokens.mint_key(
            name=f"key:{row['tenant']}/{row['name']}",
            principal=service_account_principal(row["tenant"], row["name"]),
            role="serviceaccount",
            tenant=row["tenant"],
            expires_at=expires_at,
        )
        async with self.db.write() as conn:
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
