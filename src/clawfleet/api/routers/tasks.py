"""Tasks and runs: submit, watch (events, SSE with resume), cancel and steer."""

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

from clawfleet.api.deps import Ctx, State
from clawfleet.api.routers.resources import ERRORS
from clawfleet.api.strict_input import StrictRoute
from clawfleet.domain.lifecycle import RunState
from clawfleet.schemas.meta import ListMeta
from clawfleet.schemas.runs import RunEventsOut, RunListOut, RunOut
from clawfleet.schemas.task_waits import TaskWaitOut, WaitUntil
from clawfleet.schemas.tasks import SteerIn, SteerOut, TaskIn, TaskListOut, TaskOut
from clawfleet.services.context import RequestContext
from clawfleet.store.paging import MAX_BIGINT

router = APIRouter(route_class=StrictRoute, responses=ERRORS)

KEEPALIVE_SECONDS = 15.0


def _meta(cursor: str | None) -> ListMeta:
    return ListMeta.model_validate({"continue": cursor})


@router.post(
    "/tasks",
    status_code=201,
    tags=["tasks"],
    summary="Submit a task",
    responses={200: {"model": TaskOut, "description": "Already submitted with this key"}},
)
async def submit_task(
    ctx: Ctx,
    state: State,
    response: Response,
    body: Annotated[TaskIn, Body()],
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)] = None,
) -> TaskOut:
    view, created = await state.tasks.submit(ctx, body, idempotency_key=idempotency_key)
    response.status_code = 201 if created else 200
    return view


@router.get("/tasks", tags=["tasks"], summary="List tasks")
async def list_tasks(
    ctx: Ctx,
    state: State,
    task_state: Annotated[str | None, Query(alias="state", max_length=16)] = None,
    agent: Annotated[str | None, Query(max_length=63)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(alias="continue", max_length=64)] = None,
    all_tenants: Annotated[bool, Query(alias="allTenants")] = False,
    all_projects: Annotated[bool, Query(alias="allProjects")] = False,
) -> TaskListOut:
    page = await state.tasks.find(
        ctx, state=task_state, agent=agent, all_tenants=all_tenants,
        all_projects=all_projects, cursor=cursor, limit=limit,
    )  # fmt: skip
    return TaskListOut(metadata=_meta(page.next_cursor), items=page.items)


@router.get("/tasks/{name}", tags=["tasks"], summary="Get a task (by name, or by its uid)")
async def get_task(ctx: Ctx, state: State, name: str) -> TaskOut:
    return await state.tasks.get(ctx, name)


@router.get("/tasks/{name}/runs", tags=["tasks"], summary="The runs (attempts) of a task")
async def task_runs(ctx: Ctx, state: State, name: str) -> RunListOut:
    return RunListOut(metadata=_meta(None), items=await state.tasks.runs(ctx, name))


@router.post("/tasks/{name}/cancel", tags=["tasks"], summary="Cancel a task")
async def cancel_task(ctx: Ctx, state: State, name: str) -> TaskOut:
    return await state.tasks.cancel(ctx, name)


@router.post(
    "/tasks/{name}/steer", tags=["tasks"], summary="Send a message into the running attempt"
)
async def steer_task(
    ctx: Ctx, state: State, name: str, body: Annotated[SteerIn, Body()]
) -> SteerOut:
    return await state.tasks.steer(ctx, name, body.message)


@router.get("/runs", tags=["runs"], summary="List runs")
async def list_runs(
    ctx: Ctx,
    state: State,
    task: Annotated[str | None, Query(max_length=63)] = None,
    run_state: Annotated[str | None, Query(alias="state", max_length=16)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(alias="continue", max_length=64)] = None,
    all_tenants: Annotated[bool, Query(alias="allTenants")] = False,
    all_projects: Annotated[bool, Query(alias="allProjects")] = False,
) -> RunListOut:
    page = await state.runs.find(
        ctx, task=task, state=run_state, all_tenants=all_tenants,
        all_projects=all_projects, cursor=cursor, limit=limit,
    )  # fmt: skip
    return RunListOut(metadata=_meta(page.next_cursor), items=page.items)


@router.get("/runs/{run_id}", tags=["runs"], summary="Get a run")
async def get_run(ctx: Ctx, state: State, run_id: str) -> RunOut:
    return await state.runs.get(ctx, run_id)


@router.post("/runs/{run_id}/cancel", tags=["runs"], summary="Cancel the task of a run")
async def cancel_run(ctx: Ctx, state: State, run_id: str) -> TaskOut:
    run = await state.runs.run(ctx, run_id)
    return await state.tasks.cancel(ctx, run.task_id)


@router.post("/runs/{run_id}/steer", tags=["runs"], summary="Send a message into a running run")
async def steer_run(
    ctx: Ctx, state: State, run_id: str, body: Annotated[SteerIn, Body()]
) -> SteerOut:
    return await state.tasks.steer(ctx, run_id, body.message)


@router.get("/runs/{run_id}/events", tags=["runs"], summary="Events after a cursor")
async def run_events(
    ctx: Ctx,
    state: State,
    run_id: str,
    after: Annotated[int, Query(ge=0, le=MAX_BIGINT)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> RunEventsOut:
    run, events = await state.runs.events(ctx, run_id, after=after, limit=limit)
    return RunEventsOut(run=run_id, state=run.state.value, last_seq=run.last_seq, events=events)


# One server-sent event, as a parsed frame (the OpenAPI 3.2 ``itemSchema`` shape): ``data`` is
# JSON text, a run event or, in the last ``end`` frame, the run's state and last sequence number.
SSE_FRAME = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "event": {"type": "string"},
        "data": {"type": "string", "contentMediaType": "application/json"},
    },
    "required": ["event", "data"],
}


@router.get(
    "/runs/{run_id}/events/stream",
    tags=["runs"],
    summary="Server-sent events; resume with Last-Event-ID or ?after=",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {"schema": SSE_FRAME}},
                     "description": "`id:`/`event:`/`data:` frames; data is an event as in "
                     "/runs/{run_id}/events, and a last `end` frame"}},
)  # fmt: skip
async def stream_run_events(
    ctx: Ctx,
    state: State,
    request: Request,
    run_id: str,
    after: Annotated[int | None, Query(ge=0, le=MAX_BIGINT)] = None,
    last_event_id: Annotated[int | None, Header(alias="Last-Event-ID", ge=0, le=MAX_BIGINT)] = None,
) -> StreamingResponse:
    cursor = after if after is not None else (last_event_id or 0)
    await state.runs.run(ctx, run_id)  # 404 before the stream starts
    return StreamingResponse(
        _sse(ctx, state, request, run_id, cursor),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _sse(
    ctx: RequestContext, state: Any, request: Request, run_id: str, cursor: int
) -> AsyncIterator[bytes]:
    # Subscribed before the first read and for the whole stream, so an event or a completion
    # that lands between a read and the wait still wakes it.
    with state.notifier.subscribe(f"run:{run_id}") as woken:
        while True:
            run, events = await state.runs.events(ctx, run_id, after=cursor, limit=1000)
            chunks = []
            for event in events:
                cursor = event.seq
                data = event.model_dump_json()
                chunks.append(f"id: {cursor}\nevent: {event.type}\ndata: {data}\n\n")
            if chunks:
                yield "".join(chunks).encode()
            if run.state is not RunState.RUNNING and cursor >= run.last_seq:
                end = json.dumps({"state": run.state.value, "lastSeq": cursor})
                yield f"event: end\ndata: {end}\n\n".encode()
                return
            if len(events) == 1000:
                continue
            awake = await woken.wait(KEEPALIVE_SECONDS)
            if await request.is_disconnected() or state.notifier.closing:
                return
            if not awake:
                yield b": keepalive\n\n"


# -- the task long poll (services/task_waits.py) ------------------------------------------------


@router.get(
    "/tasks/{name}/wait",
    tags=["tasks"],
    summary="Wait until a task has started or finished (long poll), and say why it waits",
    response_model=TaskWaitOut,
)
async def wait_task(
    ctx: Ctx,
    state: State,
    name: str,
    until: Annotated[WaitUntil, Query(description="started: claimed by an instance")] = "finished",
    within: Annotated[
        float, Query(alias="timeout", ge=0, le=60, description="Seconds to wait at most.")
    ] = 25,
) -> TaskWaitOut:
    answer = await state.task_waits.wait(ctx, name, until, within)
    return TaskWaitOut(task=answer.task, waiting=answer.waiting)
