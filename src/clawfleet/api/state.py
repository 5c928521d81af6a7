"""What the API needs from the composition root, held on ``app.state.api``."""

from __future__ import annotations

from dataclasses import dataclass

from clawfleet.services.resources import ResourceService
from clawfleet.services.tokens import TokenService
from clawfleet.store.db import Database


@dataclass(frozen=True)
class ApiState:
    db: Database
    tokens: TokenService
    resources: ResourceService
    max_body_bytes: int
    version: str
