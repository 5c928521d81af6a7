"""Small builders for manifests used across tests."""

from __future__ import annotations

from typing import Any

API_VERSION = "clawfleet.dev/v1"


def tenant(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "Tenant", "metadata": {"name": name}, "spec": spec}


def project(name: str, tenant: str = "default", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "Project",
        "metadata": {"name": name, "tenant": tenant},
        "spec": spec,
    }


def agent(
    name: str,
    *,
    tenant: str | None = None,
    project: str | None = None,
    labels: dict[str, str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if tenant:
        metadata["tenant"] = tenant
    if project:
        metadata["project"] = project
    if labels:
        metadata["labels"] = labels
    body = {"adapter": "command", "command": ["sh", "-c", "cat"], **spec}
    return {"apiVersion": API_VERSION, "kind": "Agent", "metadata": metadata, "spec": body}


def secret(
    name: str, tenant: str | None = None, project: str | None = None, **values: str
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if tenant:
        metadata["tenant"] = tenant
    if project:
        metadata["project"] = project
    return {
        "apiVersion": API_VERSION,
        "kind": "Secret",
        "metadata": metadata,
        "spec": {"stringData": values},
    }
