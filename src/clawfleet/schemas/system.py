"""What the probes and ``whoami`` return."""

from __future__ import annotations

from clawfleet.schemas.base import OutModel


class ProbeOut(OutModel):
    status: str


class BindingOut(OutModel):
    role: str
    tenant: str | None
    project: str | None


class WhoamiOut(OutModel):
    name: str
    kind: str
    role: str
    tenant: str | None
    bindings: list[BindingOut]
    server_version: str
