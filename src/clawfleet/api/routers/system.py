"""Health probes and who-am-I."""

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from clawfleet.api.deps import Ctx, State
from clawfleet.api.problems import problem_response

probes = APIRouter(tags=["system"])
router = APIRouter(tags=["system"])


@probes.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@probes.get("/readyz", summary="Readiness: the database answers")
async def readyz(state: State) -> JSONResponse:
    try:
        async with state.db.read() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:  # any failure means not ready; the reason goes to the log, not the probe
        return problem_response(503, "Not ready", "the database does not answer", "not-ready")
    return JSONResponse({"status": "ready"})


@router.get("/whoami", summary="The caller's identity")
async def whoami(ctx: Ctx, state: State) -> dict[str, Any]:
    principal = ctx.principal
    return {
        "name": principal.name,
        "kind": principal.role,
        "role": principal.role,
        "tenant": principal.tenant or None,
        "bindings": [
            {"role": b.role, "tenant": b.tenant, "project": b.project} for b in principal.bindings
        ],
        "serverVersion": state.version,
    }
