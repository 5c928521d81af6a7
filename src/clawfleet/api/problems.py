"""Map every error to an RFC 9457 ``application/problem+json`` response, in one place."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from clawfleet.core import errors
from clawfleet.core.errors import ClawfleetError, FieldError
from clawfleet.core.logging import request_id_var
from clawfleet.core.redact import default_redactor
from clawfleet.domain.kinds import ALL_KINDS

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

_STATUS: list[tuple[type[ClawfleetError], int, str]] = [
    (errors.InvalidInput, 422, "Invalid input"),
    (errors.NotFound, 404, "Not found"),
    (errors.AlreadyExists, 409, "Already exists"),
    (errors.Conflict, 409, "Conflict"),
    (errors.PayloadTooLarge, 413, "Payload too large"),
    (errors.Unauthenticated, 401, "Unauthenticated"),
    (errors.Forbidden, 403, "Forbidden"),
    (errors.RateLimited, 429, "Too many requests"),
    (errors.TemporaryError, 503, "Temporarily unavailable"),
    (errors.PermanentError, 500, "Internal error"),
]

_KIND_TAGS = {info.kind for info in ALL_KINDS}


def problem_response(
    status: int,
    title: str,
    detail: str,
    code: str,
    field_errors: Iterable[FieldError] = (),
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    redact = default_redactor().redact  # no secret value or token in an error, ever
    body: dict[str, Any] = {
        "type": f"https://clawfleet.dev/problems/{code}",
        "title": title,
        "status": status,
        "detail": redact(detail),
        "code": code,
        "errors": [
            {"path": e.path, "message": redact(e.message), "code": e.code} for e in field_errors
        ],
        "requestId": request_id_var.get(),
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def error_response(exc: ClawfleetError) -> JSONResponse:
    for cls, status, title in _STATUS:
        if isinstance(exc, cls):
            headers = None
            if status == 401:
                headers = {"WWW-Authenticate": "Bearer"}
            if isinstance(exc, errors.TemporaryError):
                headers = {"Retry-After": str(max(1, round(exc.delay)))}
            if isinstance(exc, errors.RateLimited):
                headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}
            field_errors = exc.errors if isinstance(exc, errors.InvalidInput) else ()
            return problem_response(status, title, exc.message, exc.code, field_errors, headers)
    log.error("unmapped error %s: %s", type(exc).__name__, exc.message)
    return problem_response(500, "Internal error", exc.message, exc.code)


def internal_error_response() -> JSONResponse:
    """The answer to a bug: nothing of the exception (the server log has it), only the request
    id to find it by."""
    return problem_response(
        500,
        "Internal error",
        "the server failed to handle this request; the server log has the details "
        f"under request id {request_id_var.get()}",
        "internal",
    )


def _path(loc: Sequence[int | str]) -> str:
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    if parts and parts[0] in _KIND_TAGS:  # the discriminator tag of the apply union
        parts = parts[1:]
    return ".".join(str(p) for p in parts)


def _message(err: dict[str, Any]) -> tuple[str, str]:
    kind = str(err.get("type", "invalid"))
    loc = err.get("loc", ())
    if kind == "extra_forbidden":
        return f"unknown field {str(loc[-1])!r}", "unknown-field"
    if kind == "missing":
        return "required field is missing", "required"
    if kind == "json_invalid":
        return "request body is not valid JSON", "invalid-json"
    if kind == "union_tag_invalid":
        names = ", ".join(sorted(_KIND_TAGS))
        return f"unknown kind; this server knows {names}", "unknown-kind"
    message = str(err.get("msg", "invalid"))
    return message.removeprefix("Value error, "), kind.replace("_", "-")


def validation_problem(exc: RequestValidationError) -> JSONResponse:
    field_errors = []
    for err in exc.errors():
        message, code = _message(err)
        field_errors.append(FieldError(_path(err.get("loc", ())) or "body", message, code))
    first = field_errors[0] if field_errors else FieldError("body", "invalid", "invalid")
    detail = f"{first.path}: {first.message}"
    if len(field_errors) > 1:
        detail += f" (and {len(field_errors) - 1} more)"
    return problem_response(422, "Invalid input", detail, "invalid", field_errors)


def install_problem_handlers(app: FastAPI) -> None:
    async def on_clawfleet_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ClawfleetError)
        return error_response(exc)

    async def on_validation_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return validation_problem(exc)

    async def on_http_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "no-such-endpoint", 405: "method-not-allowed"}.get(
            exc.status_code, f"http-{exc.status_code}"
        )
        detail = str(exc.detail)
        if exc.status_code == 404:
            detail = "no such endpoint; see /api/v1/openapi.json for the API"
        return problem_response(exc.status_code, detail, detail, code)

    async def on_unexpected(_request: Request, exc: Exception) -> JSONResponse:
        # Only reached if the request-context middleware itself failed: it answers the rest.
        log.error("unhandled error: %s", type(exc).__name__, exc_info=exc)
        return internal_error_response()

    app.add_exception_handler(ClawfleetError, on_clawfleet_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
