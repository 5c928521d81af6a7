"""The Adapter driver seam, used by the runner to execute runs on an agent program.

A driver owns the agent program's processes. ``execute`` yields ``AgentEvent``s in order and always
ends with exactly one event of type ``result``; cancel and steer may arrive at any time from
another task.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class AgentBundle:
    """What the runner lays out for one agent program (a subset of a Revision, for now)."""

    adapter: str
    command: Sequence[str]
    workdir: Path
    config: Mapping[str, Any] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    instructions: str | None = None

    def __repr__(self) -> str:  # env may carry secrets
        return f"AgentBundle(adapter={self.adapter!r}, command={list(self.command)!r})"


@dataclass(frozen=True)
class RunInput:
    run_id: str
    task_id: str
    prompt: str
    data: Mapping[str, Any] = field(default_factory=dict)
    attempt: int = 1


@dataclass(frozen=True)
class AgentEvent:
    """One fact from the agent program. ``type`` is one of EVENT_TYPES."""

    type: str
    data: Mapping[str, Any] = field(default_factory=dict)


# message: text from the agent; tool_call: {name, args}; log: {level, text}; usage: token counts;
# progress: {text, pct}; steer: a steer reached the program; result: the end of a run with
# {status: succeeded|failed, output, failureKind?, error?}.
EVENT_TYPES = frozenset({"message", "tool_call", "log", "usage", "progress", "steer", "result"})


class Driver(Protocol):
    async def start(self, bundle: AgentBundle) -> None:
        """Prepare (and for long-lived programs, start) the agent program.

        Called once when the runner starts, and again whenever ``ready()`` turns False with no
        run in flight (a long-lived program died): so it must bring a stopped program back.
        Idempotent: with the same bundle and the program running, it does nothing.

        Raises ``PermanentError`` when this bundle cannot work (another adapter, a bad config,
        a program that is not installed or not executable: ``ProgramStartError``), with a
        message for the user, who reads it as the instance's ``lastError``; the runner reports
        it to the control plane and exits. ``TemporaryError`` means it may work on a retry.
        Never puts an environment value in a message: bundle variables may be secret.
        """

    async def ready(self) -> bool:
        """True when a run can be executed now (``start`` succeeded and, for a long-lived
        program, it still runs). Cheap, never raises: the runner asks before every heartbeat."""

    def execute(self, run: RunInput) -> AsyncIterator[AgentEvent]:
        """Run one task attempt; yields events and ends with one ``result`` event. Never raises
        for agent failures: they become a failed result with a ``failureKind``."""

    async def steer(self, run_id: str, message: str) -> None:
        """Deliver a message into the active run. Raises NotFound if the run is not active."""

    async def cancel(self, run_id: str, grace: float = 3.0) -> None:
        """Stop the run: its program is terminated (killed after ``grace``); ``execute`` then
        ends with a result of failureKind ``cancelled``. Idempotent."""

    async def stop(self, grace: float = 5.0) -> None:
        """Stop every program this driver started. Idempotent."""
