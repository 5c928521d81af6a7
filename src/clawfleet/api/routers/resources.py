"""CRUD routes for every declarative kind, built from one template so that all kinds behave alike.

Not using ``from __future__ import annotations``: FastAPI reads the body model from the annotation
at definition time, and here the model is a closure variable.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query
from fastapi.responses import JSONResponse

from clawfleet.api.deps import Ctx, State
from clawfleet.api.strict_input import StrictRoute
from clawfleet.domain.kinds import ALL_KINDS, KindInfo
from clawfleet.domain.selectors import parse_selector
from clawfleet.schemas.base import API_VERSION
from clawfleet.schemas.meta import ApplyResultOut, ResourceListOut, ResourceOut
from clawfleet.schemas.problems import Problem
from clawfleet.schemas.registry import MODELS_BY_KIND, AnyResourceIn

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "description": text}
    for status, text in {
        401: "No or invalid bearer token",
        403: "Not allowed",
        404: "Not found",
        409: "Conflict; the problem's code says which (docs/errors.md)",
        413: "Body too large",
        422: "Invalid input, with field paths",
        429: "Too many requests; retry after `Retry-After` seconds",
        503: "Temporarily unavailable; retry after `Retry-After` seconds",
    }.items()
}

NAME_DOC = "Resource name (lower-case letters, digits and '-')."


def _kind_router(info: KindInfo) -> APIRouter:
    model: Any = MODELS_BY_KIND[info.kind]
    router = APIRouter(
        route_class=StrictRoute, prefix=f"/{info.plural}", tags=[info.plural], responses=ERRORS
    )

    @router.get("", response_model=ResourceListOut, summary=f"List {info.plural}")
    async def list_resources(
        ctx: Ctx,
        state: State,
        label_selector: Annotated[str | None, Query(alias="labelSelector")] = None,
        limit: Annotated[int | None, Query(ge=1, le=10_000)] = None,
        cursor: Annotated[str | None, Query(alias="continue", max_length=2048)] = None,
        all_tenants: Annotated[bool, Query(alias="allTenants")] = False,
        all_projects: Annotated[bool, Query(alias="allProjects")] = False,
    ) -> JSONResponse:
        page = await state.resources.list(
            ctx,
            info,
            selector=parse_selector(label_selector),
            all_tenants=all_tenants,
            all_projects=all_projects,
            cursor=cursor,
            limit=limit,
        )
        return JSONResponse(
            {
                "apiVersion": API_VERSION,
                "kind": f"{info.kind}List",
                "metadata": {"continue": page.next_cursor},
                "items": page.items,
            }
        )

    @router.post("", status_code=201, response_model=ResourceOut, summary=f"Create a {info.kind}")
    async def create_resource(
        ctx: Ctx,
        state: State,
        body: Annotated[model, Body()],
        idempotency_key: Annotated[
            str | None, Header(alias="Idempotency-Key", max_length=255)
        ] = None,
    ) -> JSONResponse:
        view, replayed = await state.resources.create(ctx, body, idempotency_key=idempotency_key)
        headers = {"Idempotency-Replayed": "true"} if replayed else None
        return JSONResponse(view, status_code=201, headers=headers)

    @router.get("/{name}", response_model=ResourceOut, summary=f"Get a {info.kind}")
    async def get_resource(ctx: Ctx, state: State, name: str) -> JSONResponse:
        return JSONResponse(await state.resources.get(ctx, info, name))

    @router.put("/{name}", response_model=ResourceOut, summary=f"Replace a {info.kind}")
    async def update_resource(
        ctx: Ctx, state: State, name: str, body: Annotated[model, Body()]
    ) -> JSONResponse:
        return JSONResponse(await state.resources.update(ctx, body, name))

    @router.delete("/{name}", response_model=ResourceOut, summary=f"Delete a {info.kind}")
    async def delete_resource(
        ctx: Ctx,
        state: State,
        name: str,
        resource_version: Annotated[str | None, Query(alias="resourceVersion")] = None,
    ) -> JSONResponse:
        view = await state.resources.delete(ctx, info, name, resource_version=resource_version)
        return JSONResponse(view)

    return router


router = APIRouter(route_class=StrictRoute)
for _info in ALL_KINDS:
    router.include_router(_kind_router(_info))


@router.post(
    "/apply",
    response_model=ApplyResultOut,
    tags=["apply"],
    responses={**ERRORS, 201: {"model": ApplyResultOut, "description": "Created"}},
    summary="Create or update one resource by name",
    description="Applying the same document twice changes nothing and answers `unchanged`.",
)
async def apply_resource(
    ctx: Ctx, state: State, body: Annotated[AnyResourceIn, Body()]
) -> JSONResponse:
    result, view = await state.resources.apply(ctx, body)
    status = 201 if result.value == "created" else 200
    return JSONResponse({"result": result.value, "object": view}, status_code=status)
