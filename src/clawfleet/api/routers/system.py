"""Health probes and who-am-I."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from clawfleet.api.deps import Ctx, State
from clawfleet.api.problems import problem_response
from clawfleet.api.routers.resources import ERRORS
from clawfleet.api.strict_input import StrictRoute
from clawfleet.schemas.problems import Problem
from clawfleet.schemas.system import BindingOut, ProbeOut, WhoamiOut

probes = APIRouter(route_class=StrictRoute, tags=["system"])
router = APIRouter(route_class=StrictRoute, tags=["system"], responses=ERRORS)


@probes.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> ProbeOut:
    return ProbeOut(status="ok")


@probes.get(
    "/readyz",
    summary="Readiness: the database answers",
    response_model=ProbeOut,
    responses={503: {"model": Problem, "description": "The database does not answer"}},
)
async def readyz(state: State) -> JSONResponse:
    try:
        async with state.db.read() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:  # any failure means not ready; the reason goes to the log, not the probe
        return problem_response(503, "Not ready", "the database does not answer", "not-ready")
    return JSONResponse({"status": "ready"})


@router.get("/whoami", summary="The caller's identity")
async def whoami(ctx: Ctx, state: State) -> WhoamiOut:
    principal = ctx.principal
    return WhoamiOut(
        name=principal.name,
        kind=principal.role,
        role=principal.role,
        tenant=principal.tenant or None,
        bindings=[
            BindingOut(role=b.role, tenant=b.tenant, project=b.project) for b in principal.bindings
        ],
        server_version=state.version,
    )
