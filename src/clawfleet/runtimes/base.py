"""The Runtime seam: launch, inspect, stop, logs, list what we own, remove and maintain.

Every backend (local processes now; Docker and Kubernetes later) implements ``Runtime`` and passes
the contract suite in ``clawfleet.testing.runtime_contract``. Backends label what they create so
that a restarted control plane can find its instances again (``list_owned``) instead of launching
duplicates, and translate their own errors into ``TemporaryError`` (retry later) or
``PermanentError`` (will not work as asked).
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from clawfleet.core.errors import PermanentError

# Every object a runtime creates carries these labels (plus the caller's own).
OWNER_LABEL = "clawfleet.dev/owner"
INSTANCE_LABEL = "clawfleet.dev/instance"

MAX_INSTANCE_ID_LENGTH = 128


def validate_instance_id(instance_id: str) -> str:
    """Return ``instance_id`` if every backend can use it (as one path component, a container
    or Pod name part); else PermanentError. ``launch`` refuses the others."""
    problem = None
    if not instance_id:
        problem = "is empty"
    elif len(instance_id) > MAX_INSTANCE_ID_LENGTH:
        problem = f"is longer than {MAX_INSTANCE_ID_LENGTH} characters"
    elif instance_id in (".", ".."):
        problem = "is a relative path"
    elif "/" in instance_id or "\0" in instance_id:
        problem = "contains '/' or a NUL byte"
    if problem is not None:
        raise PermanentError(
            f"instance id {instance_id[:MAX_INSTANCE_ID_LENGTH]!r} {problem}; "
            "use a single path component such as 'reviewer-0'"
        )
    return instance_id


@dataclass(frozen=True)
class LaunchSpec:
    """Everything a runtime needs to start one Instance.

    ``env`` may hold secrets: a runtime passes it to the process and never writes it to a log,
    a label, a metadata file or a process title.
    """

    instance_id: str
    command: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    cpu: str | None = None
    memory: str | None = None

    def __repr__(self) -> str:  # env may carry secrets
        return f"LaunchSpec(instance_id={self.instance_id!r}, command={list(self.command)!r})"


@dataclass(frozen=True)
class Handle:
    """How a runtime finds an Instance again; safe to store (JSON-able fields only)."""

    runtime: str
    instance_id: str
    ref: str  # backend-specific: "pid:starttime" locally, a container id, a Pod name
    labels: Mapping[str, str] = field(default_factory=dict)


class State(enum.Enum):
    RUNNING = "running"
    EXITED = "exited"
    MISSING = "missing"  # the runtime knows nothing of it (never started, or reaped)


@dataclass(frozen=True)
class Observation:
    state: State
    exit_code: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    detail: str = ""


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do, so controllers and the API can say what is possible."""

    isolation: str  # "process" | "container" | "pod"
    survives_control_plane_restart: bool
    resource_limits: bool
    log_follow: bool


class Runtime(Protocol):
    name: str
    capabilities: Capabilities

    async def launch(self, spec: LaunchSpec) -> Handle:
        """Start the Instance. Idempotent per ``spec.instance_id``: if it is already running,
        return its handle and start nothing. Raises TemporaryError / PermanentError."""

    async def inspect(self, handle: Handle) -> Observation:
        """What the Instance is doing now. Never raises for a vanished Instance: MISSING."""

    async def stop(self, handle: Handle, grace: float) -> Observation:
        """Ask the Instance to stop (SIGTERM or equivalent), kill it after ``grace`` seconds,
        and return the final observation. Idempotent: stopping a stopped Instance is fine."""

    def logs(
        self, handle: Handle, *, follow: bool = False, tail: int | None = None
    ) -> AsyncIterator[str]:
        """Lines the Instance wrote to stdout/stderr, oldest first (the last ``tail`` lines if
        given); with ``follow``, keep yielding new lines until the Instance exits."""

    async def list_owned(self, labels: Mapping[str, str] | None = None) -> list[Handle]:
        """Handles of every Instance this runtime created and that still exists (running or
        exited but not yet removed), filtered by ``labels`` (all must match)."""

    async def remove(self, handle: Handle) -> None:
        """Forget a stopped Instance: delete what the runtime keeps for it (work dir, logs,
        container). Idempotent. The agent controller calls it when it prunes a stopped
        instance (``AgentControllerConfig.stopped_retention`` after it stopped), so that
        ``clawfleet logs`` can read a stopped instance's output until then."""

    async def maintain(self) -> None:
        """Periodic upkeep that keeps the backend bounded (the local runtime rotates logs);
        a no-op where there is nothing to do. Called every few seconds by the run reaper;
        problems with one Instance are logged and skipped, never raised."""
