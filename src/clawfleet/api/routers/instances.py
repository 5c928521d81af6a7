"""Instances (read-mostly) and agent operations: scale, sleep, wake, events."""

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from fastapi.responses import StreamingResponse

from clawfleet.api.deps import Ctx, State
from clawfleet.api.routers.resources import ERRORS
from clawfleet.api.strict_input import StrictRoute
from clawfleet.domain.lifecycle import AgentState, StopRequest
from clawfleet.schemas.instances import (
    EventListOut,
    EventOut,
    InstanceDetailOut,
    InstanceListOut,
    InstanceOut,
)
from clawfleet.schemas.meta import ListMeta, ResourceOut
from clawfleet.schemas.tasks import ScaleIn

router = APIRouter(route_class=StrictRoute, responses=ERRORS)


@router.get(
    "/instances", tags=["instances"], summary="List instances", response_model=InstanceListOut
)
async def list_instances(
    ctx: Ctx,
    state: State,
    agent: Annotated[str | None, Query(max_length=63)] = None,
    include_stopped: Annotated[bool, Query(alias="includeStopped")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
    cursor: Annotated[str | None, Query(alias="continue", max_length=1024)] = None,
    all_tenants: Annotated[bool, Query(alias="allTenants")] = False,
    all_projects: Annotated[bool, Query(alias="allProjects")] = False,
) -> InstanceListOut:
    page = await state.instances.find(
        ctx, agent=agent, all_tenants=all_tenants, all_projects=all_projects,
        include_stopped=include_stopped, cursor=cursor, limit=limit,
    )  # fmt: skip
    return InstanceListOut(
        metadata=ListMeta.model_validate({"continue": page.next_cursor}),
        items=[InstanceOut.of(instance) for instance in page.items],
    )


@router.get(
    "/instances/{name}",
    tags=["instances"],
    summary="Get an instance and its latest events",
    response_model=InstanceDetailOut,
)
async def get_instance(ctx: Ctx, state: State, name: str) -> InstanceDetailOut:
    instance = InstanceOut.of(await state.instances.instance(ctx, name))
    events = await state.instances.events(ctx, "Instance", name)
    return InstanceDetailOut(
        **dict(instance), events=[EventOut.model_validate(event) for event in events]
    )


@router.get(
    "/instances/{name}/logs",
    tags=["instances"],
    summary="The instance's output",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                     "description": "Lines of output, oldest first"}},
)  # fmt: skip
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


@router.post(
    "/instances/{name}/restart",
    tags=["instances"],
    summary="Restart in place",
    response_model=InstanceOut,
)
async def restart_instance(ctx: Ctx, state: State, name: str) -> InstanceOut:
    return InstanceOut.of(await state.instances.request(ctx, name, StopRequest.RESTART))


@router.post(
    "/instances/{name}/stop",
    tags=["instances"],
    summary="Stop (the agent replaces it)",
    response_model=InstanceOut,
)
async def stop_instance(ctx: Ctx, state: State, name: str) -> InstanceOut:
    return InstanceOut.of(await state.instances.request(ctx, name, StopRequest.STOP))


async def _patch(ctx: Ctx, state: State, name: str, changes: dict[str, Any]) -> dict[str, Any]:
    view = await state.agents.patch_spec(ctx, name, changes)
    await state.notifier.notify("reconcile")
    return view


@router.post(
    "/agents/{name}/scale", tags=["agents"], summary="Set replicas", response_model=ResourceOut
)
async def scale_agent(
    ctx: Ctx, state: State, name: str, body: Annotated[ScaleIn, Body()]
) -> dict[str, Any]:
    return await _patch(ctx, state, name, {"replicas": body.replicas})


@router.post(
    "/agents/{name}/sleep",
    tags=["agents"],
    summary="Sleep: no instances until work arrives",
    response_model=ResourceOut,
)
async def sleep_agent(ctx: Ctx, state: State, name: str) -> dict[str, Any]:
    return await _patch(ctx, state, name, {"state": AgentState.SLEEPING.value})


@router.post(
    "/agents/{name}/wake",
    tags=["agents"],
    summary="Wake: run the declared replicas",
    response_model=ResourceOut,
)
async def wake_agent(ctx: Ctx, state: State, name: str) -> dict[str, Any]:
    return await _patch(ctx, state, name, {"state": AgentState.RUNNING.value})


@router.get(
    "/agents/{name}/events",
    tags=["agents"],
    summary="What happened to the agent",
    response_model=EventListOut,
)
async def agent_events(ctx: Ctx, state: State, name: str) -> EventListOut:
    events = await state.instances.events(ctx, "Agent", name)
    return EventListOut(items=[EventOut.model_validate(event) for event in events])
