"""Idempotent creates: a retried request with the same ``Idempotency-Key`` gets the first answer.

A client that lost the answer to a create (a timeout, a dropped connection) sends it again with
the same key and receives what the first attempt answered instead of a 409. The key belongs to
the principal that used it; the same key with a different request is refused, because replaying
an answer to another question would be a lie. Answers are kept ``ttl_seconds`` and purged on the
next keyed request. Everything here runs inside the caller's write transaction, so an answer is
stored if and only if the create it answers commits.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from clawfleet.core.clock import Clock
from clawfleet.core.errors import IdempotencyKeyReused
from clawfleet.services.secret_box import SecretBox
from clawfleet.store.repositories.idempotency import IdempotencyRepository, StoredAnswer


class IdempotentAnswers:
    def __init__(self, clock: Clock, box: SecretBox, ttl_seconds: int) -> None:
        self.clock = clock
        self.box = box
        self.ttl_seconds = ttl_seconds

    def fingerprint(self, request: dict[str, Any], secret_values: dict[str, bytes] | None) -> str:
        """What identifies a request. Keyed, because for a Secret the request holds its values."""
        return self.box.fingerprint(
            json.dumps(request, sort_keys=True, default=str).encode()
            + b"|"
            + json.dumps(sorted((secret_values or {}).items()), default=str).encode()
        )

    async def replay(
        self, conn: AsyncConnection, principal: str, key: str, fingerprint: str
    ) -> dict[str, Any] | None:
        """The first answer to this key, or None if there is none (yet, or any longer)."""
        repo = IdempotencyRepository(conn)
        await repo.purge(older_than=self._horizon())
        stored = await repo.find(principal, key, self._horizon())
        if stored is None:
            return None
        if stored.request_hash != fingerprint:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was already used for a different request; "
                "use a new key for a new request"
            )
        answer: dict[str, Any] = json.loads(stored.body)
        return answer

    async def remember(
        self,
        conn: AsyncConnection,
        principal: str,
        key: str,
        fingerprint: str,
        answer: dict[str, Any],
    ) -> None:
        stored = StoredAnswer(fingerprint, 201, json.dumps(answer))
        await IdempotencyRepository(conn).save(principal, key, stored, self.clock.now())

    def _horizon(self) -> datetime:
        return self.clock.now() - timedelta(seconds=self.ttl_seconds)
