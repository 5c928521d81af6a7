"""The runner protocol endpoints. A runner token may call these for its own instance only."""

from typing import Annotated, Any

from fastapi import APIRouter, Body

from clawfleet.api.deps import Ctx, State
from clawfleet.api.routers.resources import ERRORS
from clawfleet.api.strict_input import StrictRoute
from clawfleet.domain.instances import InstanceId
from clawfleet.schemas.runner import (
    AckIn,
    AckOut,
    ClaimIn,
    ClaimOut,
    CommandsOut,
    CommandsWaitIn,
    CompleteIn,
    CompleteOut,
    EventsIn,
    EventsPostOut,
    HeartbeatIn,
    HeartbeatOut,
    RegisterOut,
    StartFailedIn,
    StartFailedOut,
)
from clawfleet.services.runner_protocol import check_runner

router = APIRouter(
    route_class=StrictRoute,
    prefix="/runner/instances/{instance_id}",
    tags=["runner"],
    responses=ERRORS,
)


@router.post(
    "/register",
    summary="A runner (re)starts and gets its bundle",
    response_model=None,
    responses={200: {"model": RegisterOut}},
)
async def register(ctx: Ctx, state: State, instance_id: str) -> dict[str, Any]:
    check_runner(ctx.principal, instance_id)
    return await state.dispatcher.protocol.register(instance_id)


@router.post(
    "/heartbeat",
    summary="Liveness, lease renewal, pending commands",
    response_model=None,
    responses={200: {"model": HeartbeatOut}},
)
async def heartbeat(
    ctx: Ctx, state: State, instance_id: str, body: Annotated[HeartbeatIn, Body()]
) -> dict[str, Any]:
    check_runner(ctx.principal, instance_id)
    return await state.dispatcher.protocol.heartbeat(
        instance_id, body.liveness, body.active_runs, body.acked_commands
    )


@router.post(
    "/claim",
    summary="Long poll for runs",
    response_model=None,
    responses={200: {"model": ClaimOut}},
)
async def claim(
    ctx: Ctx, state: State, instance_id: str, body: Annotated[ClaimIn, Body()]
) -> dict[str, Any]:
    check_runner(ctx.principal, instance_id)
    return {"runs": await state.dispatcher.claims.claim(instance_id, body.max, body.wait)}


@router.post(
    "/commands",
    summary="Long poll for commands (cancel, steer)",
    response_model=None,
    responses={200: {"model": CommandsOut}},
)
async def commands(
    ctx: Ctx, state: State, instance_id: str, body: Annotated[CommandsWaitIn, Body()]
) -> dict[str, Any]:
    check_runner(ctx.principal, instance_id)
    return {"commands": await state.dispatcher.protocol.wait_commands(instance_id, body.wait)}


@router.post(
    "/commands/ack",
    summary="Acknowledge commands",
    response_model=None,
    responses={200: {"model": AckOut}},
)
async def ack(
    ctx: Ctx, state: State, instance_id: str, body: Annotated[AckIn, Body()]
) -> dict[str, Any]:
    check_runner(ctx.principal, instance_id)
    await state.dispatcher.protocol.ack_commands(instance_id, body.ids)
    return {"acked": len(body.ids)}


@router.post(
    "/runs/{run_id}/events",
    summary="Append a batch of run events (idempotent)",
    response_model=None,
    responses={200: {"model": EventsPostOut}},
)
async def events(
    ctx: Ctx, state: State, instance_id: str, run_id: str, body: Annotated[EventsIn, Body()]
) -> dict[str, Any]:
    check_runner(ctx.principal, instance_id)
    last = await state.dispatcher.outcomes.post_events(instance_id, run_id, body.events)
    return {"lastSeq": last}


@router.post(
    "/runs/{run_id}/complete",
    summary="Record a run's result (once)",
    response_model=None,
    responses={200: {"model": CompleteOut}},
)
async def complete(
    ctx: Ctx, state: State, instance_id: str, run_id: str, body: Annotated[CompleteIn, Body()]
) -> dict[str, Any]:
    check_runner(ctx.principal, instance_id)
    return await state.dispatcher.outcomes.complete(instance_id, run_id, body)


@router.post("/failed", summary="The runner could not start its agent program: why")
async def start_failed(
    ctx: Ctx, state: State, instance_id: str, body: Annotated[StartFailedIn, Body()]
) -> StartFailedOut:
    check_runner(ctx.principal, instance_id)
    await state.runner_failures.record_start_failure(
        InstanceId(instance_id), body.error, permanent=body.permanent
    )
    return StartFailedOut()
