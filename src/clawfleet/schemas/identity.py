"""What sign-in, users, service accounts and the audit log return."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from clawfleet.schemas.base import OutModel


class SessionOut(OutModel):
    """A new session: the access token is short-lived, the refresh token renews it once."""

    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"]
    expires_in: int
    user: str

    def __repr__(self) -> str:  # never let a token reach a log line
        return f"SessionOut(user={self.user!r})"


class StatusOut(OutModel):
    status: str


class UserOut(OutModel):
    name: str
    disabled: bool
    created_at: datetime


class UserListOut(OutModel):
    items: list[UserOut]


class KeySummaryOut(OutModel):
    id: str
    created_at: datetime
    expires_at: datetime | None
    revoked: bool


class ServiceAccountOut(OutModel):
    name: str
    tenant: str
    description: str
    created_at: datetime
    keys: list[KeySummaryOut]


class ServiceAccountListOut(OutModel):
    items: list[ServiceAccountOut]


class MintedKeyOut(OutModel):
    id: str
    key: str  # shown this once
    expires_at: datetime | None
    note: str

    def __repr__(self) -> str:
        return f"MintedKeyOut(id={self.id!r})"


class AuditEntryOut(OutModel):
    id: int
    time: datetime
    principal: str
    verb: str
    kind: str
    tenant: str | None
    project: str | None
    name: str
    outcome: str
    client: str
    request_id: str
    details: dict[str, Any]


class AuditListMeta(OutModel):
    continue_: str | None = Field(default=None, alias="continue")


class AuditListOut(OutModel):
    items: list[AuditEntryOut]
    metadata: AuditListMeta
