"""The Agent spec: what runs, where, how many, with which model, skills and configuration.

The agent controller reads a stored spec back through ``AgentSpec`` (so the defaults live here
only), and the revision of what an instance runs is computed from it.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, ValidationError, model_validator

from clawfleet.core.errors import PermanentError
from clawfleet.domain.lifecycle import AgentPhase, AgentState
from clawfleet.domain.limits import MAX_MAP_ENTRIES
from clawfleet.domain.resources import ResourceRecord
from clawfleet.domain.revisions import Revision, SecretRef
from clawfleet.schemas.base import (
    EnvName,
    IdleTimeout,
    Line,
    Name,
    Quantity,
    Text,
    TextOrNone,
    WireModel,
)
from clawfleet.schemas.json_values import JsonObject
from clawfleet.schemas.meta import ObjectMeta

log = logging.getLogger(__name__)

_TEXT_MAX = 256 * 1024
_ARG_MAX = 128 * 1024  # one argument or environment value (Linux's MAX_ARG_STRLEN)


class ModelRef(WireModel):
    provider: Name
    name: Line = Field(min_length=1, max_length=256)


class SkillRef(WireModel):
    name: Name
    version: Line = Field(default="*", min_length=1, max_length=64)


class TemplateRef(WireModel):
    name: Name
    variables: JsonObject = Field(default_factory=dict)


class SecretKeyRef(WireModel):
    secret: Name
    key: str = Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")


class ResourceRequests(WireModel):
    cpu: Quantity | None = None
    memory: Quantity | None = None


class AgentSpec(WireModel):
    adapter: Literal["command", "openclaw", "codex", "claude-code"]
    runtime: Literal["local", "docker", "kubernetes"] = "local"
    replicas: int = Field(default=1, ge=0, le=1000)
    state: AgentState = AgentState.RUNNING
    command: list[Annotated[Text, Field(max_length=_ARG_MAX)]] | None = Field(
        default=None, min_length=1, max_length=256
    )
    model: ModelRef | None = None
    identity: TextOrNone = Field(default=None, max_length=_TEXT_MAX)
    soul: TextOrNone = Field(default=None, max_length=_TEXT_MAX)
    instructions: TextOrNone = Field(default=None, max_length=_TEXT_MAX)
    skills: list[SkillRef] = Field(default_factory=list, max_length=256)
    template: TemplateRef | None = None
    config: JsonObject = Field(default_factory=dict)
    env: dict[EnvName, Annotated[Text, Field(max_length=_ARG_MAX)]] = Field(
        default_factory=dict, max_length=MAX_MAP_ENTRIES
    )
    secret_env: dict[EnvName, SecretKeyRef] = Field(
        default_factory=dict, max_length=MAX_MAP_ENTRIES
    )
    resources: ResourceRequests | None = None
    concurrency: int = Field(default=1, ge=1, le=256)
    idle_timeout: IdleTimeout | None = None

    @model_validator(mode="after")
    def _command_matches_adapter(self) -> AgentSpec:
        if self.adapter == "command" and not self.command:
            raise ValueError("adapter 'command' needs 'command': the program and its arguments")
        if self.adapter == "command":
            protocol = self.config.get("protocol", "jsonl")
            mode = self.config.get("mode", "per-run")
            if protocol not in ("jsonl", "text"):
                raise ValueError("config.protocol of a command agent is 'jsonl' or 'text'")
            if mode not in ("per-run", "long-lived"):
                raise ValueError("config.mode of a command agent is 'per-run' or 'long-lived'")
            if mode == "long-lived" and protocol != "jsonl":
                raise ValueError("a long-lived command agent must speak the jsonl protocol")
        clash = set(self.env) & set(self.secret_env)
        if clash:
            raise ValueError(f"variables set in both env and secretEnv: {sorted(clash)}")
        return self

    def revision(self) -> Revision:
        """What an instance of this agent runs (see ``domain.revisions``)."""
        return Revision(
            adapter=self.adapter,
            command=tuple(self.command or ()),
            config=self.config,
            env=dict(self.env),
            secret_env={
                name: SecretRef(ref.secret, ref.key) for name, ref in self.secret_env.items()
            },
            instructions=self.instructions,
            runtime=self.runtime,
            concurrency=self.concurrency,
        )


class AgentIn(WireModel):
    api_version: Literal["clawfleet.dev/v1"] = "clawfleet.dev/v1"
    kind: Literal["Agent"]
    metadata: ObjectMeta
    spec: AgentSpec
    status: dict[str, object] | None = None


def read_agent_spec(record: ResourceRecord) -> AgentSpec:
    """The typed spec of a stored Agent. PermanentError if it no longer validates (written by
    another version): reconciling it cannot succeed until the agent is applied again."""
    try:
        return AgentSpec.model_validate(record.spec)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "spec"
        raise PermanentError(
            f"the stored spec of {record.key.describe()} is invalid at spec.{where}: "
            f"{first['msg']}; apply the agent again to fix it"
        ) from exc


class AgentStatus(WireModel):
    """What the agent controller reports in an Agent's ``status`` (and reads back next pass)."""

    model_config = ConfigDict(validate_by_name=True)  # built by the controller from field names

    phase: AgentPhase = AgentPhase.PENDING
    replicas: int = 0  # instances wanted now (0 while asleep or stopped)
    ready_replicas: int = 0
    instances: int = 0
    restarts: int = 0
    asleep: bool | None = None  # None: never decided (a Sleeping agent starts asleep)
    last_error: str | None = None
    observed_generation: int = 0
    # The last time the controller saw work for the agent (a queued task or a running run);
    # kept here, not in memory, so the idle timer survives a restart or a leader change.
    last_busy_at: datetime | None = None

    def to_doc(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def failed(self, message: str, generation: int) -> AgentStatus:
        """This status, marked Failed (a permanent error) for ``generation``."""
        return self.model_copy(
            update={"phase": AgentPhase.FAILED, "last_error": message,
                    "observed_generation": generation}
        )  # fmt: skip


def read_agent_status(record: ResourceRecord) -> AgentStatus:
    """The status the controller wrote last; an empty one if there is none or it is foreign."""
    try:
        return AgentStatus.model_validate(record.status)
    except ValidationError:
        log.info("ignoring the unreadable status of %s", record.key.describe())
        return AgentStatus()
