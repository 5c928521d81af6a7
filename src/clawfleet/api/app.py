"""Build the FastAPI application from an ``ApiState``. No I/O happens here."""

from __future__ import annotations

from fastapi import FastAPI

from clawfleet.api.middleware import install_middleware
from clawfleet.api.openapi import install_openapi
from clawfleet.api.problems import install_problem_handlers
from clawfleet.api.routers import identity, instances, resources, runner, system, tasks
from clawfleet.api.state import ApiState

API_PREFIX = "/api/v1"


def create_app(state: ApiState) -> FastAPI:
    app = FastAPI(
        title="ClawFleet",
        version=state.version,
        summary="Control plane for fleets of AI agents",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.state.api = state
    install_problem_handlers(app)
    install_openapi(app)
    install_middleware(app, state.max_body_bytes, state.rate_limits, state.clock)
    app.include_router(system.probes)
    app.include_router(system.router, prefix=API_PREFIX)
    app.include_router(identity.router, prefix=API_PREFIX)
    app.include_router(instances.router, prefix=API_PREFIX)
    app.include_router(tasks.router, prefix=API_PREFIX)
    app.include_router(runner.router, prefix=API_PREFIX)
    app.include_router(resources.router, prefix=API_PREFIX)
    return app
