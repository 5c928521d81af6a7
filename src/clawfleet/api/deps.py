"""FastAPI dependencies: the request context and the services."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Query, Request
from pydantic import AfterValidator

from clawfleet.api.state import ApiState
from clawfleet.core.errors import FieldError, InvalidInput, Unauthenticated
from clawfleet.core.logging import request_id_var
from clawfleet.domain.names import name_problem
from clawfleet.services.context import Principal, RequestContext


def _as_utc(value: datetime) -> datetime:
    # The store compares times in UTC: a naive time is taken as UTC, and a time that is not one
    # in UTC (past the year 9999 once converted) is refused here rather than in the driver.
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("must be a time between the years 1 and 9999 in UTC") from None


UtcTime = Annotated[datetime, AfterValidator(_as_utc)]


async def api_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state


def _scope_param(field: str, value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if problem := name_problem(value):
        raise InvalidInput(
            f"invalid {field} {value[:80]!r}: {problem}", [FieldError(field, problem)]
        )
    return value


async def request_context(
    request: Request,
    tenant: Annotated[
        str | None, Query(description="Tenant to act in; defaults to the caller's tenant.")
    ] = None,
    project: Annotated[
        str | None, Query(description="Project to act in; defaults to 'default'.")
    ] = None,
) -> RequestContext:
    principal = request.scope.get("state", {}).get("principal")
    if not isinstance(principal, Principal):  # the middleware guarantees it; be safe anyway
        raise Unauthenticated("not authenticated")
    client = request.client.host if request.client else "-"
    return RequestContext(
        principal=principal,
        tenant=_scope_param("tenant", tenant),
        project=_scope_param("project", project),
        request_id=request_id_var.get() or "-",
        client=client,
    )


Ctx = Annotated[RequestContext, Depends(request_context)]
State = Annotated[ApiState, Depends(api_state)]
