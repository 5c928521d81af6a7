"""Bearer tokens: minting, checking, and the bootstrap admin token.

Tokens are random, shown once, and stored as SHA-256 hashes; a leaked database does not leak
working tokens.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Collection
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from clawfleet.core.clock import Clock
from clawfleet.core.errors import Unauthenticated
from clawfleet.services.context import Principal
from clawfleet.store.db import Database
from clawfleet.store.repositories.tokens import TokenRepository

TOKEN_PREFIX = "cf_"  # noqa: S105 - not a secret
ADMIN_TOKEN_NAME = "bootstrap-admin"  # noqa: S105 - a label


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


CACHE_SECONDS = 5.0
CACHE_MAX = 10_000
KNOWN_SECONDS = 600.0  # how long an accepted token still counts as known (``is_known``)


class TokenService:
    """Mints and checks tokens. Checks are cached for a few seconds (every request authenticates);
    a revocation through this process drops its cache entries at once, and other replicas see it
    within ``CACHE_SECONDS``."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self._cache: dict[str, tuple[float, Principal, datetime | None]] = {}
        self._known: dict[str, float] = {}  # digest -> known until (monotonic)

    async def mint(self, *, name: str, principal: str, role: str, tenant: str = "") -> str:
        """Create a token and return its plaintext, which is not kept anywhere."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        async with self.db.write() as conn:
            await TokenRepository(conn).add(
                id=str(uuid.uuid4()),
                name=name,
                token_hash=hash_token(token),
                principal=principal,
                role=role,
                tenant=tenant,
                now=self.clock.now(),
            )
        return token

    async def mint_key(
        self,
        conn: AsyncConnection,
        *,
        name: str,
        principal: str,
        role: str,
        tenant: str,
        expires_at: datetime | None,
    ) -> tuple[str, str]:
        """An API key (service accounts), written in the caller's transaction (the one that
        checked its service account still exists); returns (key id, key), shown once."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token_id = str(uuid.uuid4())
        await TokenRepository(conn).add(
            id=token_id, name=name, token_hash=hash_token(token), principal=principal,
            role=role, tenant=tenant, now=self.clock.now(), expires_at=expires_at,
        )  # fmt: skip
        return token_id, token

    async def mint_runner(self, instance_id: str, tenant: str) -> tuple[str, str]:
        """A token good only for one instance's runner endpoints; returns (token id, token)."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token_id = str(uuid.uuid4())
        async with self.db.write() as conn:
            await TokenRepository(conn).add(
                id=token_id,
                name=f"runner:{instance_id}",
                token_hash=hash_token(token),
                principal=f"instance:{instance_id}",
                role="runner",
                tenant=tenant,
                now=self.clock.now(),
            )
        return token_id, token

    async def revoke(self, token_id: str) -> None:
        async with self.db.write() as conn:
            await TokenRepository(conn).revoke(token_id, self.clock.now())
        self._forget(token_id)

    def forget_principals(self, names: Collection[str]) -> None:
        """Drop the cached checks of these principals' tokens (after their rows were deleted)."""
        for key, (_, principal, _) in list(self._cache.items()):
            if principal.name in names:
                del self._cache[key]

    def _forget(self, token_id: str | None = None) -> None:
        if token_id is None:
            self._cache.clear()
            return
        for key, (_, principal, _) in list(self._cache.items()):
            if principal.token_id == token_id:
                del self._cache[key]

    async def authenticate(self, token: str) -> Principal:
        if not token.startswith(TOKEN_PREFIX) or len(token) > 512:
            raise Unauthenticated("invalid token")
        digest = hash_token(token)
        now = self.clock.now()
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > self.clock.monotonic():
            _, principal, expires_at = cached
            if expires_at is None or expires_at > now:
                return principal
        async with self.db.read() as conn:
            row = await TokenRepository(conn).find_by_hash(digest)
        if row is None or row.revoked_at is not None:
            raise Unauthenticated("invalid token")
        if row.expires_at is not None and row.expires_at <= now:
            raise Unauthenticated("token expired")
        principal = Principal(name=row.principal, role=row.role, tenant=row.tenant, token_id=row.id)
        if len(self._cache) >= CACHE_MAX:
            self._cache.clear()
        self._cache[digest] = (self.clock.monotonic() + CACHE_SECONDS, principal, row.expires_at)
        if len(self._known) >= CACHE_MAX:
            self._known.clear()
        self._known[digest] = self.clock.monotonic() + KNOWN_SECONDS
        return principal

    def is_known(self, token: str) -> bool:
        """Whether this process accepted the token in the last ``KNOWN_SECONDS``, answered
        without a database read. Not a check of the token: it may have been revoked since."""
        known_until = self._known.get(hash_token(token))
        return known_until is not None and known_until > self.clock.monotonic()

    async def is_valid(self, token: str) -> bool:
        try:
            await self.authenticate(token)
        except Unauthenticated:
            return False
        return True

    async def new_bootstrap_admin(self, *, replace_others: bool) -> str:
        """Mint a bootstrap admin token; with ``replace_others``, revoke the earlier ones."""
        if replace_others:
            async with self.db.write() as conn:
                repo = TokenRepository(conn)
                while (old := await repo.find_by_name(ADMIN_TOKEN_NAME)) is not None:
                    await repo.revoke(old.id, self.clock.now())
            self._forget()
        return await self.mint(name=ADMIN_TOKEN_NAME, principal="admin", role="admin")
