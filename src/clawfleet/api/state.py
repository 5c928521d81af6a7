"""What the API needs from the composition root, held on ``app.state.api``."""

from __future__ import annotations

from dataclasses import dataclass, field

from clawfleet.api.ratelimit import RateLimits
from clawfleet.core.clock import Clock, SystemClock
from clawfleet.services.agents import AgentService
from clawfleet.services.audit import AuditLog
from clawfleet.services.dispatch import Dispatcher
from clawfleet.services.identity import IdentityService
from clawfleet.services.instances import InstanceLogs, InstanceService
from clawfleet.services.resources import ResourceService
from clawfleet.services.runner_failures import RunnerFailures
from clawfleet.services.runs import RunService
from clawfleet.services.sessions import SessionService
from clawfleet.services.task_waits import TaskWaits
from clawfleet.services.tasks import TaskService
from clawfleet.services.tokens import TokenService
from clawfleet.store.db import Database
from clawfleet.store.notify import Notifier


@dataclass(frozen=True)
class ApiState:
    db: Database
    tokens: TokenService
    sessions: SessionService
    identity: IdentityService
    audit: AuditLog
    resources: ResourceService
    agents: AgentService
    tasks: TaskService
    runs: RunService
    task_waits: TaskWaits
    dispatcher: Dispatcher
    instances: InstanceService
    runner_failures: RunnerFailures
    notifier: Notifier
    logs: InstanceLogs
    max_body_bytes: int
    version: str
    # Defaulted so that composition code that predates rate limits keeps working.
    rate_limits: RateLimits = field(default_factory=RateLimits)
    clock: Clock = field(default_factory=SystemClock)
