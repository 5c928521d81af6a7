"""What `events`, `logs`, `result`, `cancel` and `steer` accept as a reference to work.

``task/NAME`` and ``run/ID`` (what ``-o name`` prints) say what they are. A bare reference that
has the exact shape of a run id (``r`` and 22 hex digits, ``domain/ids.py``) is a run; any other
bare reference is asked of the server as a task first and then as a run, so a task named
``review-1`` is never mistaken for a run because it starts with an ``r``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from clawfleet.cli.common import fail
from clawfleet.client import ApiError, ClawfleetClient

RUN_ID = re.compile(r"^r[0-9a-f]{22}$")
KINDS = {"task": "task", "tasks": "task", "run": "run", "runs": "run"}


@dataclass(frozen=True)
class WorkRef:
    kind: Literal["task", "run"]
    name: str
    doc: dict[str, Any] | None = None  # the task or run, when resolving had to fetch it

    @property
    def path(self) -> str:
        return f"/{self.kind}s/{self.name}"


def parse_ref(ref: str) -> WorkRef | None:
    """The reference if its text says what it is, else None (a bare name to ask about)."""
    prefix, slash, name = ref.partition("/")
    if slash:
        kind = KINDS.get(prefix)
        if kind is None or not name:
            fail(f"unknown reference {ref!r}; use task/NAME or run/ID", code=2)
        return WorkRef("task" if kind == "task" else "run", name)
    return WorkRef("run", ref) if RUN_ID.match(ref) else None


def resolve_ref(client: ClawfleetClient, ref: str) -> WorkRef:
    """A task or a run: as written, else the task of that name, else the run of that id."""
    parsed = parse_ref(ref)
    if parsed is not None:
        return parsed
    try:
        return WorkRef("task", ref, client.get("tasks", ref))
    except ApiError as exc:
        if exc.status != 404:
            raise
    try:
        return WorkRef("run", ref, client.get("runs", ref))
    except ApiError as exc:
        if exc.status != 404:
            raise
    fail(f"no task or run {ref!r}; list them with `clawfleet get tasks,runs`")


def fetch(client: ClawfleetClient, ref: WorkRef) -> dict[str, Any]:
    """The task or run ``ref`` names (fetched once)."""
    return ref.doc if ref.doc is not None else client.get(f"{ref.kind}s", ref.name)


def run_of(client: ClawfleetClient, ref: WorkRef) -> tuple[str, str]:
    """(run id, task id) for ``ref``: the run itself, or a task's current (else latest) run."""
    doc = fetch(client, ref)
    if ref.kind == "run":  # the task's uid finds it from any scope; its name only in its own
        return ref.name, str(doc["spec"]["taskUid"])
    current = doc["status"].get("currentRun")
    if current:
        return str(current), ref.name
    runs = client.get_path(f"/tasks/{ref.name}/runs")["items"]
    if not runs:
        fail(f"task {ref.name} has no run yet (state {doc['status']['state']})")
    return str(runs[-1]["metadata"]["name"]), ref.name
