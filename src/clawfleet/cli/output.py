"""Render resources as tables, JSON, YAML or names, the same way for every command."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import yaml

from clawfleet.cli.common import stdout_write

Column = tuple[str, Callable[[dict[str, Any]], str]]
API_VERSION = "clawfleet.dev/v1"  # schemas.base.API_VERSION, without importing pydantic


def age(item: dict[str, Any], now: datetime | None = None) -> str:
    created = item.get("metadata", {}).get("createdAt")
    if not created:
        return "-"
    then = datetime.fromisoformat(created.replace("Z", "+00:00"))
    seconds = int(((now or datetime.now(UTC)) - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * (2 if unit != "m" else 1):
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def _spec(key: str, default: str = "-") -> Callable[[dict[str, Any]], str]:
    def get(item: dict[str, Any]) -> str:
        value = item.get("spec", {}).get(key)
        return default if value in (None, "") else str(value)

    return get


def _labels(item: dict[str, Any]) -> str:
    labels = item.get("metadata", {}).get("labels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "-"


def _model(item: dict[str, Any]) -> str:
    model = item.get("spec", {}).get("model") or {}
    return f"{model.get('provider')}/{model.get('name')}" if model else "-"


def _keys(item: dict[str, Any]) -> str:
    return str(len(item.get("status", {}).get("keys") or []))


def _status(key: str) -> Callable[[dict[str, Any]], str]:
    def get(item: dict[str, Any]) -> str:
        value = (item.get("status") or {}).get(key)
        return "-" if value in (None, "") else str(value)

    return get


def _agent_ready(item: dict[str, Any]) -> str:
    status = item.get("status") or {}
    if "readyReplicas" not in status:
        return "-"
    return f"{status.get('readyReplicas', 0)}/{status.get('replicas', 0)}"


def _target(item: dict[str, Any]) -> str:
    spec = item.get("spec") or {}
    return str(spec.get("agent") or spec.get("selector") or "-")


def _short(text: Any, width: int = 40) -> str:
    value = " ".join(str(text or "").split())
    return value if len(value) <= width else value[: width - 1] + "…"


COLUMNS: dict[str, list[Column]] = {
    "Tenant": [("DISPLAY NAME", _spec("displayName"))],
    "Project": [("DISPLAY NAME", _spec("displayName"))],
    "Agent": [
        ("ADAPTER", _spec("adapter")),
        ("RUNTIME", _spec("runtime")),
        ("READY", _agent_ready),
        ("STATE", _spec("state")),
        ("PHASE", _status("phase")),
    ],
    "Secret": [("TYPE", _spec("type")), ("KEYS", _keys)],
    "Task": [
        ("TARGET", _target),
        ("STATE", _status("state")),
        ("ATTEMPTS", _status("attempts")),
        ("PROMPT", lambda i: _short((i.get("spec") or {}).get("prompt"))),
    ],
    "Run": [
        ("TASK", lambda i: str(i["spec"]["task"])),
        ("AGENT", lambda i: str(i["spec"]["agent"])),
        ("STATE", _status("state")),
        ("FAILURE", _status("failureKind")),
    ],
    "Instance": [
        ("AGENT", lambda i: str(i["spec"]["agent"])),
        ("PHASE", _status("phase")),
        ("LIVENESS", _status("liveness")),
        ("RESTARTS", _status("restarts")),
    ],
}
WIDE: dict[str, list[Column]] = {
    "Agent": [
        ("REPLICAS", _spec("replicas")),
        ("MODEL", _model),
        ("GENERATION", lambda i: str(i["metadata"]["generation"])),
        ("ERROR", lambda i: _short(_status("lastError")(i), 60)),
    ],
    "Task": [("RUN", _status("currentRun")), ("FAILURE", _status("failureKind"))],
    "Run": [
        ("INSTANCE", lambda i: str(i["spec"]["instance"])),
        ("ATTEMPT", lambda i: str(i["spec"]["attempt"])),
    ],
    "Instance": [("REF", _status("ref")), ("ERROR", lambda i: _short(_status("lastError")(i), 60))],
}


def _scope_columns(items: Sequence[dict[str, Any]], wide: bool) -> list[Column]:
    tenants = {i["metadata"].get("tenant") for i in items}
    projects = {i["metadata"].get("project") for i in items}
    columns: list[Column] = []
    if (len(tenants) > 1 or wide) and tenants != {None}:
        columns.append(("TENANT", lambda i: str(i["metadata"].get("tenant", ""))))
    if (len(projects) > 1 or wide) and projects != {None}:
        columns.append(("PROJECT", lambda i: str(i["metadata"].get("project", ""))))
    return columns


def print_table(kind: str, items: Sequence[dict[str, Any]], *, wide: bool = False) -> None:
    """Plain aligned columns (like kubectl), never wrapped, so they survive pipes and grep."""
    columns: list[Column] = [
        *_scope_columns(items, wide),
        ("NAME", lambda i: str(i["metadata"]["name"])),
        *COLUMNS.get(kind, []),
    ]
    if wide:
        columns += [*WIDE.get(kind, []), ("LABELS", _labels)]
    columns.append(("AGE", age))
    print_rows(
        [title for title, _ in columns], [[render(item) for _, render in columns] for item in items]
    )


def print_rows(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A header and rows in aligned columns, the way every table of the CLI looks."""
    table = [list(header), *(list(row) for row in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = [
        "   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in table
    ]
    stdout_write("\n".join(lines) + "\n")


def dump_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=False) + "\n"


def dump_yaml(value: Any) -> str:
    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True, default_flow_style=False)


def print_items(kind: str, items: list[dict[str, Any]], fmt: str, *, single: bool) -> None:
    if fmt == "json":
        stdout_write(dump_json(items[0] if single else _as_list(kind, items)))
    elif fmt == "yaml":
        stdout_write(dump_yaml(items[0] if single else _as_list(kind, items)))
    elif fmt == "name":
        stdout_write("".join(f"{kind.lower()}/{i['metadata']['name']}\n" for i in items))
    else:
        print_table(kind, items, wide=fmt == "wide")


def print_list(items: list[dict[str, Any]], fmt: str) -> None:
    """Items of several kinds as one JSON or YAML document (a ``List``, as kubectl prints)."""
    doc = {"apiVersion": API_VERSION, "kind": "List", "items": items}
    stdout_write(dump_json(doc) if fmt == "json" else dump_yaml(doc))


def _as_list(kind: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": f"{kind}List", "items": items}
