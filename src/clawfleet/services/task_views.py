"""Wire view of instances (rows → envelopes), until instances get their output model."""

from __future__ import annotations

from typing import Any

from clawfleet.schemas.base import API_VERSION
from clawfleet.services.views import format_time


def _time(value: Any) -> str | None:
    return format_time(value) if value is not None else None


def view_instance(row: dict[str, Any]) -> dict[str, Any]:
    handle = row["handle"] or {}
    return {
        "apiVersion": API_VERSION,
        "kind": "Instance",
        "metadata": {
            "name": row["name"],
            "tenant": row["tenant"],
            "project": row["project"],
            "uid": row["id"],
            "labels": {"clawfleet.dev/agent": row["agent"]},
            "createdAt": _time(row["created_at"]),
            "updatedAt": _time(row["updated_at"]),
        },
        "spec": {
            "agent": row["agent"],
            "agentGeneration": row["agent_generation"],
            "runtime": row["runtime"],
        },
        "status": {
            "phase": row["phase"],
            "liveness": row["liveness"],
            "restarts": row["restarts"],
            "lastError": row["last_error"],
            "heartbeatAt": _time(row["heartbeat_at"]),
            "startedAt": _time(row["started_at"]),
            "stoppedAt": _time(row["stopped_at"]),
            "ref": handle.get("ref"),
        },
    }
