"""The runner protocol (DESIGN.md §5): what runners send and receive."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from clawfleet.domain.limits import MAX_ID
from clawfleet.schemas.base import Line, OutModel, Text, TextOrNone, WireModel
from clawfleet.schemas.json_values import JsonObject, JsonValue

CommandId = Annotated[int, Field(ge=1, le=MAX_ID)]
RunId = Annotated[Line, Field(min_length=1, max_length=64)]

# What a runner says in its heartbeats: "busy" while runs execute, "ready" when its agent
# program can take one, "degraded" when it cannot; "starting" is set at registration.
Liveness = Literal["starting", "ready", "busy", "waiting-model", "waiting-tool", "idle", "degraded"]


class HeartbeatIn(WireModel):
    liveness: Liveness = "ready"
    active_runs: list[RunId] = Field(default_factory=list, max_length=1024)
    acked_commands: list[CommandId] = Field(default_factory=list, max_length=1024)


class ClaimIn(WireModel):
    max: int = Field(default=1, ge=1, le=256)
    wait: float = Field(default=25.0, ge=0, le=60)


class AckIn(WireModel):
    ids: list[CommandId] = Field(max_length=1024)


class EventIn(WireModel):
    seq: int = Field(ge=1, le=MAX_ID)
    type: str = Field(min_length=1, max_length=32, pattern=r"^[a-z][a-z_-]*$")
    data: JsonObject = Field(default_factory=dict)


class EventsIn(WireModel):
    events: list[EventIn] = Field(max_length=10_000)


class CompleteIn(WireModel):
    status: Literal["succeeded", "failed"]
    output: JsonValue = None
    failure_kind: Annotated[str | None, Field(max_length=32, pattern=r"^[a-z][a-z_-]*$")] = None
    error: TextOrNone = Field(default=None, max_length=64 * 1024)
    usage: JsonObject | None = None
    # The run's last events, sent with the result to save a round trip (idempotent by seq).
    events: list[EventIn] = Field(default_factory=list, max_length=10_000)


class CommandsWaitIn(WireModel):
    wait: float = Field(default=25.0, ge=0, le=60)


class StartFailedIn(WireModel):
    """The runner could not start its agent program, and says why before it exits."""

    error: Annotated[Text, Field(min_length=1, max_length=4096)]
    # True when retrying with the same bundle cannot help (e.g. the program is not installed).
    permanent: bool = True


class StartFailedOut(OutModel):
    recorded: bool = True


# -- what the control plane answers (documented in the OpenAPI; the hot routes return plain
# -- documents of this shape without validating them again) -----------------------------------


class InstanceRef(OutModel):
    id: str
    name: str
    agent: str
    tenant: str
    project: str


class BundleOut(OutModel):
    """What the runner lays out for its adapter: never secret values, only their names."""

    adapter: str | None
    command: list[str]
    config: dict[str, Any]
    env_names: list[str]
    secret_env_names: list[str]
    instructions: str | None


class RegisterOut(OutModel):
    instance: InstanceRef
    revision: str  # digest of what the instance runs (domain.revisions)
    bundle: BundleOut
    concurrency: int
    heartbeat_seconds: float
    lease_seconds: float


class CommandOut(OutModel):
    id: int
    run_id: str
    type: str
    payload: dict[str, Any]


class HeartbeatOut(OutModel):
    commands: list[CommandOut]
    stop: bool


class CommandsOut(OutModel):
    commands: list[CommandOut]


class AckOut(OutModel):
    acked: int


class ClaimedRun(OutModel):
    id: str
    task_id: str
    attempt: int
    prompt: str
    data: dict[str, Any]
    timeout_seconds: int | None


class ClaimOut(OutModel):
    runs: list[ClaimedRun]


class EventsPostOut(OutModel):
    last_seq: int


class CompleteOut(OutModel):
    state: Literal["succeeded", "failed", "cancelled"]
    recorded: bool
