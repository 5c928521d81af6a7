"""Sign-in, users and service accounts."""

from typing import Annotated

from fastapi import APIRouter, Body, Query, Request
from pydantic import Field

from clawfleet.api.deps import Ctx, State, UtcTime
from clawfleet.api.routers.resources import ERRORS
from clawfleet.api.strict_input import StrictRoute
from clawfleet.schemas.base import Line, Name, WireModel
from clawfleet.schemas.identity import (
    AuditListOut,
    MintedKeyOut,
    ServiceAccountListOut,
    ServiceAccountOut,
    SessionOut,
    StatusOut,
    UserListOut,
    UserOut,
)
from clawfleet.store.paging import MAX_BIGINT

router = APIRouter(route_class=StrictRoute, responses=ERRORS)


class LoginIn(WireModel):
    username: Line = Field(min_length=1, max_length=63)
    password: str = Field(min_length=1, max_length=1024)

    def __repr__(self) -> str:  # never let a password reach a log line
        return f"LoginIn(username={self.username!r})"


class RefreshIn(WireModel):
    refresh_token: str = Field(min_length=1, max_length=512)

    def __repr__(self) -> str:
        return "RefreshIn(<hidden>)"


class UserIn(WireModel):
    name: Name
    password: str = Field(max_length=1024)

    def __repr__(self) -> str:
        return f"UserIn(name={self.name!r})"


class ServiceAccountIn(WireModel):
    name: Name
    description: Line = Field(default="", max_length=1024)


class KeyIn(WireModel):
    expires_in_seconds: int | None = Field(default=None, ge=60, le=3 * 366 * 24 * 3600)


@router.post("/auth/login", tags=["auth"], summary="Sign in; returns an access and a refresh token")
async def login(state: State, request: Request, body: Annotated[LoginIn, Body()]) -> SessionOut:
    client = request.client.host if request.client else "-"
    return SessionOut.model_validate(
        await state.sessions.login(body.username, body.password, client)
    )


@router.post("/auth/refresh", tags=["auth"], summary="Trade a refresh token for new tokens")
async def refresh(state: State, body: Annotated[RefreshIn, Body()]) -> SessionOut:
    return SessionOut.model_validate(await state.sessions.refresh(body.refresh_token))


@router.post("/auth/logout", tags=["auth"], summary="End a session (revoke its refresh token)")
async def logout(state: State, body: Annotated[RefreshIn, Body()]) -> StatusOut:
    await state.sessions.logout(body.refresh_token)
    return StatusOut(status="signed out")


@router.get("/users", tags=["users"], summary="List users (cluster admins)")
async def list_users(ctx: Ctx, state: State) -> UserListOut:
    return UserListOut.model_validate({"items": await state.identity.list_users(ctx)})


@router.post("/users", status_code=201, tags=["users"], summary="Create a user (cluster admins)")
async def create_user(ctx: Ctx, state: State, body: Annotated[UserIn, Body()]) -> UserOut:
    return UserOut.model_validate(await state.identity.create_user(ctx, body.name, body.password))


@router.post("/users/{name}/disable", tags=["users"], summary="Disable a user and end its sessions")
async def disable_user(ctx: Ctx, state: State, name: str) -> UserOut:
    return UserOut.model_validate(await state.identity.set_user_disabled(ctx, name, True))


@router.post("/users/{name}/enable", tags=["users"], summary="Enable a user again")
async def enable_user(ctx: Ctx, state: State, name: str) -> UserOut:
    return UserOut.model_validate(await state.identity.set_user_disabled(ctx, name, False))


@router.get("/serviceaccounts", tags=["serviceaccounts"], summary="List service accounts")
async def list_service_accounts(
    ctx: Ctx, state: State, all_tenants: Annotated[bool, Query(alias="allTenants")] = False
) -> ServiceAccountListOut:
    items = await state.identity.list_service_accounts(ctx, all_tenants=all_tenants)
    return ServiceAccountListOut.model_validate({"items": items})


@router.post("/serviceaccounts", status_code=201, tags=["serviceaccounts"], summary="Create one")
async def create_service_account(
    ctx: Ctx, state: State, body: Annotated[ServiceAccountIn, Body()]
) -> ServiceAccountOut:
    created = await state.identity.create_service_account(ctx, body.name, body.description)
    return ServiceAccountOut.model_validate(created)


@router.post(
    "/serviceaccounts/{name}/keys",
    status_code=201,
    tags=["serviceaccounts"],
    summary="Mint an API key (shown once)",
)
async def mint_key(
    ctx: Ctx, state: State, name: str, body: Annotated[KeyIn, Body()]
) -> MintedKeyOut:
    return MintedKeyOut.model_validate(
        await state.identity.mint_key(ctx, name, body.expires_in_seconds)
    )


@router.delete("/serviceaccounts/{name}/keys/{key_id}", tags=["serviceaccounts"], summary="Revoke")
async def revoke_key(ctx: Ctx, state: State, name: str, key_id: str) -> StatusOut:
    await state.identity.revoke_key(ctx, name, key_id)
    return StatusOut(status="revoked")


@router.get("/audit", tags=["audit"], summary="The audit log, newest first")
async def audit(
    ctx: Ctx,
    state: State,
    kind: Annotated[str | None, Query(max_length=40)] = None,
    user: Annotated[str | None, Query(max_length=160)] = None,
    since: Annotated[UtcTime | None, Query()] = None,
    before: Annotated[int | None, Query(ge=1, le=MAX_BIGINT)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    all_tenants: Annotated[bool, Query(alias="allTenants")] = False,
) -> AuditListOut:
    items = await state.audit.find(
        ctx, kind=kind, user=user, since=since, before=before, limit=limit, all_tenants=all_tenants
    )
    cursor = str(items[-1]["id"]) if len(items) == limit else None
    return AuditListOut.model_validate({"items": items, "metadata": {"continue": cursor}})
