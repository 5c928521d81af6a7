"""Bearer tokens: minting, checking, and the bootstrap admin token.

Tokens are random, shown once, and stored as SHA-256 hashes; a leaked database does not leak
working tokens.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid

from clawfleet.core.clock import Clock
from clawfleet.core.errors import Unauthenticated
from clawfleet.services.context import Principal
from clawfleet.store.db import Database
from clawfleet.store.repositories.tokens import TokenRepository

TOKEN_PREFIX = "cf_"  # noqa: S105 - not a secret
ADMIN_TOKEN_NAME = "bootstrap-admin"  # noqa: S105 - a label


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenService:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

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

    async def authenticate(self, token: str) -> Principal:
        if not token.startswith(TOKEN_PREFIX) or len(token) > 512:
            raise Unauthenticated("invalid token")
        async with self.db.read() as conn:
            row = await TokenRepository(conn).find_by_hash(hash_token(token))
        now = self.clock.now()
        if row is None or row.revoked_at is not None:
            raise Unauthenticated("invalid token")
        if row.expires_at is not None and row.expires_at <= now:
            raise Unauthenticated("token expired")
        return Principal(name=row.principal, role=row.role, tenant=row.tenant, token_id=row.id)

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
        return await self.mint(name=ADMIN_TOKEN_NAME, principal="admin", role="admin")
