"""Waiting for a task without polling: `run --wait`, `run --follow` and `events -f`.

Between runs the CLI long-polls the task (``GET /tasks/{name}/wait``), which answers as soon as
an instance takes the task or it ends, and says why a pending task waits; the CLI prints that
reason once, and again only when it changes. While a run is current, the CLI follows the run's
event stream (SSE) to its end. ``--wait-timeout`` bounds the whole wait; Ctrl-C and a timeout
both leave the task running and say how to cancel it or fetch its result later.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any, NoReturn

import typer

from clawfleet.cli.common import err, fail
from clawfleet.client import ClawfleetClient

LONG_POLL_SECONDS = 25.0  # per request; the server allows up to 60
# The first wait for a start is short: a task that has not started by then gets its reason
# printed at once instead of after a whole long poll; one that starts sooner says nothing.
FIRST_POLL_SECONDS = 2.0
TERMINAL = ("done", "failed", "cancelled")


def event_line(event: dict[str, Any]) -> str | None:
    """How a run event reads on a terminal (None: not worth a line)."""
    kind, data = event.get("type"), event.get("data") or {}
    if kind == "message":
        return str(data.get("text", "")).rstrip("\n")
    if kind == "log":
        return f"[{data.get('level', 'log')}] {data.get('text', '')}"
    if kind == "progress":
        pct = data.get("pct")
        return f"… {data.get('text', '')}" + (f" ({pct}%)" if pct is not None else "")
    if kind == "tool_call":
        return f"→ {data.get('name')}({json.dumps(data.get('args', {}))})"
    if kind == "steer":
        return f"↪ steer: {data.get('message', data.get('text', ''))}"
    if kind == "status":
        return "· " + ", ".join(f"{k}={v}" for k, v in data.items() if v not in (None, ""))
    if kind == "result":
        return None
    return f"{kind}: {json.dumps(data)}"


def next_steps(task: str, scope: str = "") -> str:
    return (
        f"cancel it with `clawfleet cancel {task}{scope}`, or get its result later with "
        f"`clawfleet result {task}{scope}`"
    )


def interrupted(task: str, scope: str = "") -> NoReturn:
    """Ctrl-C while watching: the task goes on without us (exit status 130)."""
    err.print(f"task/{task} keeps running; {next_steps(task, scope)}", highlight=False)
    raise typer.Exit(130)


class TaskWaiter:
    """Follows one task to its end, printing progress (``follow``) and why it waits."""

    def __init__(
        self,
        client: ClawfleetClient,
        name: str,
        *,
        follow: bool,
        within: tuple[float, str] | None = None,
        scope: str = "",
    ) -> None:
        self.client = client
        self.name = name
        self.follow = follow
        self.scope = scope
        # (seconds, as the user wrote them) or None: wait as long as it takes
        self.within = within
        self.deadline = None if within is None else time.monotonic() + within[0]
        self._said: str | None = None
        self._quick = True  # the next wait is a first one (after the submit, after a run)

    def wait(self) -> dict[str, Any]:
        """The finished task; exits 1 on ``--wait-timeout`` (run it inside ``keeps_running``
        for Ctrl-C)."""
        seen: set[str] = set()
        until = "started"
        while True:
            answer = self.client.wait_task(self.name, until, self._poll_seconds())
            task: dict[str, Any] = answer["task"]
            status = task["status"]
            if status["state"] in TERMINAL:
                return task
            run = status.get("currentRun")
            if run and run not in seen:
                seen.add(run)
                self._follow(run)
                self._quick = True
                continue
            # Pending: wait for an instance to take it. Otherwise the run we followed has
            # ended and the task has not moved on yet: wait for the task itself.
            until = "started" if status["state"] in ("pending", "blocked") else "finished"
            self._say(answer.get("waiting"))
            if self._left() == 0:
                self._give_up(status["state"])

    def _follow(self, run_id: str) -> None:
        for event in self.client.stream_events(run_id, until=self.deadline):
            if event.get("type") == "end":
                return
            line = event_line(event)
            if line is not None and self.follow:
                err.print(line, markup=False, highlight=False)

    def _say(self, waiting: str | None) -> None:
        if waiting and waiting != self._said:
            err.print(f"waiting: {waiting}", markup=False, highlight=False)
        self._said = waiting

    def _left(self) -> float | None:
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.monotonic())

    def _poll_seconds(self) -> float:
        seconds = FIRST_POLL_SECONDS if self._quick else LONG_POLL_SECONDS
        self._quick = False
        left = self._left()
        return seconds if left is None else min(seconds, left)

    def _give_up(self, state: str) -> NoReturn:
        assert self.within is not None
        fail(
            f"task/{self.name} still {state} after {self.within[1]}; it keeps running: "
            + next_steps(self.name, self.scope)
        )


def run_events(client: ClawfleetClient, run_id: str, after: int = 0) -> Iterator[dict[str, Any]]:
    """The run's events, live, until it ends (the end marker is not yielded)."""
    for event in client.stream_events(run_id, after):
        if event.get("type") == "end":
            return
        yield event


@contextlib.contextmanager
def keeps_running(task: str, scope: str = "") -> Iterator[None]:
    """Ctrl-C inside says that the task keeps running and how to cancel it (exit 130)."""
    try:
        yield
    except KeyboardInterrupt:
        interrupted(task, scope)
