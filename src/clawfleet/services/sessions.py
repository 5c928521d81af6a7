"""Sessions and the authenticator: signing in, refreshing, signing out, and the one function
that turns a bearer token into a principal.

A login returns a short-lived signed access token (JWT, HS256, key derived from the secret key so
every replica shares it) and an opaque refresh token, stored hashed and replaced on every
refresh. Each access token names its user's session generation, which disabling moves on, so
nothing signed before a disable works after it. Token times come from the injected clock, so
expiry is tested in fake time. Failed sign-ins are throttled per user name and per client
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
from clawfleet.core.errors import RateLimited, Unauthenticated
from clawfleet.services.bindings import BindingIndex
from clawfleet.services.context import Principal
from clawfleet.services.secret_box import SecretBox
from clawfleet.services.tokens import TOKEN_PREFIX, TokenService, hash_token
from clawfleet.store.db import Database
from clawfleet.store.repositories.identity import IdentityRepository

ACCESS_SECONDS = 15 * 60
REFRESH_SECONDS = 30 * 24 * 3600
REFRESH_PREFIX = "cf_r_"  # shaped like a token, so log redaction always catches it
LOGIN_ATTEMPTS = 5  # failures per window, per user name and per client address
LOGIN_WINDOW = 60.0
USER_CHECK_SECONDS = 5.0  # how long a user's session generation is trusted without a read
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


class SessionService:
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
        # user id -> (checked until, session generation, or None if the user may not sign in)
        self._users: dict[str, tuple[float, int | None]] = {}
        self._dummy: str | None = None  # a hash to verify against for unknown users

    # -- authentication of every request -------------------------------------------------

    async def authenticate(self, token: str) -> Principal:
        """The principal behind a bearer token (API key, runner token or access token)."""
        if token.startswith(TOKEN_PREFIX):
            principal = await self.tokens.authenticate(token)
        else:
            principal = await self._verify_access(token)
        return await self.bindings.attach(principal)

    def vouched_for(self, token: str) -> bool:
        """Whether the token is one this control plane issued, told without a database read:
        an access token whose signature holds, or an API key or runner token accepted in the
        last few minutes. Callers at an address throttled for failed authentications get in
        with nothing else, so a flood of guesses costs no reads and locks nobody out."""
        if token.startswith(TOKEN_PREFIX):
            return self.tokens.is_known(token)
        try:
            self._decode(token)
        except Unauthenticated:
            return False
        return True

    def _decode(self, token: str) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                self._signing_key,
                algorithms=["HS256"],
                issuer="clawfleet",
                # PyJWT would compare the times with the real time; ours is the clock's.
                options={
                    "require": ["exp", "iat", "sub", "uid", "typ", "gen"],
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.PyJWTError as exc:
            raise Unauthenticated("invalid token") from exc

    async def _verify_access(self, token: str) -> Principal:
        claims = self._decode(token)
        issued, expires = claims["iat"], claims["exp"]
        if not isinstance(issued, int) or not isinstance(expires, int):
            raise Unauthenticated("invalid token")
        now = self.clock.now().timestamp()
        if expires <= now:
            raise Unauthenticated("session expired; sign in again (`clawfleet login`)")
        if issued > now or claims.get("typ") != "access":
            raise Unauthenticated("invalid token")
        # A token of an earlier generation was issued before the user was last disabled.
        generation = await self._session_generation(str(claims["uid"]))
        if generation is None or claims["gen"] != generation:
            raise Unauthenticated("invalid token")
        return Principal(name=f"user:{claims['sub']}", role="user", token_id=str(claims["uid"]))

    async def _session_generation(self, user_id: str) -> int | None:
        """The user's current session generation; None if it is disabled or gone."""
        cached = self._users.get(user_id)
        if cached and cached[0] > self.clock.monotonic():
            return cached[1]
        async with self.db.read() as conn:
            row = await IdentityRepository(conn).user_by_id(user_id)
        generation = None if row is None or row["disabled"] else int(row["session_generation"])
        if len(self._users) > 100_000:
            self._users.clear()
        self._users[user_id] = (self.clock.monotonic() + USER_CHECK_SECONDS, generation)
        return generation

    def forget_user(self, user_id: str) -> None:
        """Check the user again on its next request (it was just disabled or enabled)."""
        self._users.pop(user_id, None)

    # -- sessions --------------------------------------------------------------------------

    def _access_token(self, user: dict[str, Any]) -> str:
        now = int(self.clock.now().timestamp())
        claims = {"iss": "clawfleet", "sub": user["name"], "uid": user["id"], "typ": "access",
                  "gen": int(user["session_generation"]), "iat": now,
                  "exp": now + ACCESS_SECONDS}  # fmt: skip
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
