"""Every integer a request body may carry has an upper bound in the served OpenAPI document:
an unbounded one reached the database as 10^20 and came back as a 500."""

from __future__ import annotations

from typing import Any

import pytest

from clawfleet.server import ControlPlane


def _unbounded_integers(node: Any, schemas: dict[str, Any], path: str, seen: set[str]) -> list[str]:
    if isinstance(node, list):
        return [
            p for i, item in enumerate(node) for p in _unbounded_integers(item, schemas, path, seen)
        ]
    if not isinstance(node, dict):
        return []
    if ref := node.get("$ref"):
        name = ref.rsplit("/", 1)[1]
        if name in seen:
            return []
        return _unbounded_integers(schemas[name], schemas, f"{path}<{name}>", seen | {name})
    found = []
    if node.get("type") == "integer" and "maximum" not in node and "exclusiveMaximum" not in node:
        found.append(path)
    for key, child in node.items():
        if key == "properties":
            for name, prop in child.items():
                found += _unbounded_integers(prop, schemas, f"{path}.{name}", seen)
        elif key in ("items", "anyOf", "oneOf", "allOf", "additionalProperties"):
            found += _unbounded_integers(child, schemas, path, seen)
    return found


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_every_integer_in_a_request_body_has_a_maximum(plane: ControlPlane) -> None:
    document = plane.app.openapi()
    schemas = document["components"]["schemas"]
    unbounded = []
    for route, operations in document["paths"].items():
        for method, operation in operations.items():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                where = f"{method.upper()} {route} "
                unbounded += [
                    where + p for p in _unbounded_integers(body["schema"], schemas, "", set())
                ]
    assert unbounded == []
