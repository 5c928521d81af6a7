"""RFC 9457 problem details, the body of every error response."""

from __future__ import annotations

from pydantic import Field

from clawfleet.schemas.base import WireModel


class FieldProblem(WireModel):
    path: str
    message: str
    code: str = "invalid"


class Problem(WireModel):
    type: str = "about:blank"
    title: str
    status: int
    detail: str
    code: str
    errors: list[FieldProblem] = Field(default_factory=list)
    request_id: str | None = None
