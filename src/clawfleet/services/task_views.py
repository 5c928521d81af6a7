"""Wire views of tasks and runs (rows → envelopes)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from clawfleet.schemas.base import API_VERSION
from clawfleet.services.views import format_time


def page(
    rows: list[dict[str, Any]],
    limit: int,
    view: Callable[[dict[str, Any]], dict[str, Any]],
    cursor_of: Callable[[dict[str, Any]], str],
) -> tuple[list[dict[str, Any]], str | None]:
    """Views of the first ``limit`` rows (``limit + 1`` were fetched) and the next cursor."""
    more = len(rows) > limit
    rows = rows[:limit]
    return [view(row) for row in rows], cursor_of(rows[-1]) if more else None


def _time(value: Any) -> str | None:
    return format_time(value) if value is not None else None


def _duration(seconds: int | None) -> str | None:
    return f"{seconds}s" if seconds is not None else None


def view_task(row: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "prompt": row["prompt"],
        "data": row["data"],
        "priority": row["priority"],
        "retry": {"maxAttempts": row["max_attempts"], "backoff": f"{row['backoff_seconds']}s"},
    }
    if row["agent"]:
        spec["agent"] = row["agent"]
    if row["selector"]:
        spec["selector"] = row["selector"]
    if row["timeout_seconds"] is not None:
        spec["timeout"] = _duration(row["timeout_seconds"])
    if row["idempotency_key"]:
        spec["idempotencyKey"] = row["idempotency_key"]
    status = {
        "state": row["state"],
        "attempts": row["attempts"],
        "currentRun": row["current_run"],
        "result": row["result"],
        "failureKind": row["failure_kind"],
        "error": row["error"],
        "cancelRequested": bool(row["cancel_requested"]),
        "finishedAt": _time(row["finished_at"]),
    }
    return {
        "apiVersion": API_VERSION,
        "kind": "Task",
        "metadata": {
            "name": row["id"],
            "tenant": row["tenant"],
            "project": row["project"],
            "uid": row["id"],
            "labels": row["labels"],
            "createdBy": row["created_by"],
            "createdAt": _time(row["created_at"]),
            "updatedAt": _time(row["updated_at"]),
        },
        "spec": spec,
        "status": status,
    }


def view_run(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "Run",
        "metadata": {
            "name": row["id"],
            "tenant": row["tenant"],
            "project": row["project"],
            "uid": row["id"],
            "createdAt": _time(row["started_at"]),
        },
        "spec": {
            "task": row["task_id"],
            "attempt": row["attempt"],
            "agent": row["agent"],
            "instance": row["instance_id"],
        },
        "status": {
            "state": row["state"],
            "failureKind": row["failure_kind"],
            "error": row["error"],
            "result": row["result"],
            "usage": row["usage"],
            "lastSeq": row["last_seq"],
            "queuedAt": _time(row["queued_at"]),
            "startedAt": _time(row["started_at"]),
            "finishedAt": _time(row["finished_at"]),
        },
    }


def view_event(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "seq": row["seq"],
        "type": row["type"],
        "data": row["data"],
        "time": _time(row["created_at"]),
    }
