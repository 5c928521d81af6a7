"""Instances (read-mostly) and agent operations: scale, sleep, wake, events."""

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from fastapi.responses import JSONResponse, StreamingResponse

from clawfleet.api.deps import Ctx, State
from clawfleet.api.routers.resources import ERRORS
from clawfleet.domain.kinds import AGENT
from clawfleet.domain.lifecycle import AgentState, StopRequest
from clawfleet.schemas.base import API_VERSION
from clawfleet.schemas.tasks import ScaleIn

router = APIRouter(responses=ERRORS)


@router.get("/instances", tags=["instances"], summary="List instances")
async def list_instances(
    ctx: Ctx,
    state: State,
    agent: Annotated[str | None, Query(max_length=63)] = None,
    include_stopped: Annotated[bool, Query(alias="includeStopped")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
    cursor: Annotated[str | None, Query(alias="continue", max_length=1024)] = None,
    all_tenants: Annotated[bool, Query(alias="allTenants")] = False,
    all_projects: Annotated[bool, Query(alias="allProjects")] = False,
) -> JSONResponse:
    page = await state.instances.find(
        ctx, agent=agent, all_tenants=all_tenants, all_projects=all_projects,
        include_stopped=include_stopped, cursor=cursor, limit=limit,
    )  # fmt: skip
    body = {"apiVersion": API_VERSION, "kind": "InstanceList",
            "metadata": {"continue": page.next_cursor}, "items": page.items}  # fmt: skip
    return JSONResponse(body)


@router.get("/instances/{name}", tags=["instances"], summary="Get an instance")
async def get_instance(ctx: Ctx, state: State, name: str) -> dict[str, Any]:
    view = await state.instances.get(ctx, name)
    view["events"] = await state.instances.events(ctx, "Instance", name)
    return view


@router.get("/instances/{name}/logs", tags=["instances"], summary="The instance's output")
async def instance_logs(
    ctx: Ctx,
    state: State,
    name: str,
    follow: bool = False,
    tail: Annotated[int | None, Query(ge=1, le=100_000)] = None,
) -> StreamingResponse:
    instance = await state.instances.instance(ctx, name)
    handle = instance.handle

    async def lines() -> AsyncIterator[bytes]:
        if not handle:
            return
        async for line in state.logs(instance.runtime, handle, follow=follow, tail=tail):
            yield (line if line.endswith("\n") else line + "\n").encode()

    return StreamingResponse(lines(), media_type="text/plain; charset=utf-8")


@router.post("/instances/{name}/restart", tags=["instances"], summary="Restart in place")
async def restart_instance(ctx: Ctx, state: State, name: str) -> dict[str, Any]:
    return await state.instances.request(ctx, name, StopRequest.RESTART)


@router.post("/instances/{name}/stop", tags=["instances"], summary="Stop (the agent replaces it)")
async def stop_instance(ctx: Ctx, state: State, name: str) -> dict[str, Any]:
    return await state.instances.request(ctx, name, StopRequest.STOP)


async def _patch(ctx: Ctx, state: State, name: str, changes: dict[str, Any]) -> dict[str, Any]:
    view = await state.resources.patch_spec(ctx, AGENT, name, changes)
    await state.notifier.notify("reconcile")
    return view


@router.post("/agents/{name}/scale", tags=["agents"], summary="Set replicas")
async def scale_agent(
    ctx: Ctx, state: State, name: str, body: Annotated[ScaleIn, Body()]
) -> dict[str, Any]:
    return await _patch(ctx, state, name, {"replicas": body.replicas})


@router.post(
    "/agents/{name}/sleep", tags=["agents"], summary="Sleep: no instances until work arrives"
)
async def sleep_agent(ctx: Ctx, state: State, name: str) -> dict[str, Any]:
    return await _patch(ctx, state, name, {"state": AgentState.SLEEPING.value})


@router.post("/agents/{name}/wake", tags=["agents"], summary="Wake: run the declared replicas")
async def wake_agent(ctx: Ctx, state: State, name: str) -> dict[str, Any]:
    return await _patch(ctx, state, name, {"state": AgentState.RUNNING.value})


@router.get("/agents/{name}/events", tags=["agents"], summary="What happened to the agent")
async def agent_events(ctx: Ctx, state: State, name: str) -> dict[str, Any]:
    return {"items": await state.instances.events(ctx, "Agent", name)}
