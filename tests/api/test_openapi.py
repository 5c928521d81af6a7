"""The served OpenAPI document types every response, so clients can be generated from it."""

from __future__ import annotations

from typing import Any

import httpx

# Responses that are not JSON documents: what they hold is described in the route instead.
STREAMS = {"text/event-stream", "text/plain"}


def _untyped(schema: dict[str, Any], components: dict[str, Any]) -> bool:
    """An empty schema, or a free-form object with no properties, says nothing."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return _untyped(components[name], components)
    if any(key in schema for key in ("anyOf", "oneOf", "allOf")):
        parts = schema.get("anyOf") or schema.get("oneOf") or schema.get("allOf") or []
        return all(_untyped(part, components) for part in parts if part.get("type") != "null")
    if schema.get("type") == "array":
        return _untyped(schema.get("items") or {}, components)
    if schema.get("type") in ("string", "integer", "number", "boolean"):
        return False
    return not schema.get("properties")


async def test_every_route_has_a_typed_success_response(api: httpx.AsyncClient) -> None:
    document = (await api.get("/api/v1/openapi.json")).json()
    components = document.get("components", {}).get("schemas", {})
    untyped = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            ok = {code: r for code, r in operation["responses"].items() if code.startswith("2")}
            if not ok:
                untyped.append(f"{method.upper()} {path}: no 2xx response")
                continue
            for code, response in ok.items():
                content = response.get("content") or {}
                if code == "204" and not content:
                    continue
                if not content:
                    untyped.append(f"{method.upper()} {path} {code}: no content")
                for media, body in content.items():
                    if media in STREAMS:
                        continue
                    if _untyped(body.get("schema") or {}, components):
                        untyped.append(f"{method.upper()} {path} {code}: untyped {media}")
    assert untyped == [], "\n".join(untyped)


async def test_every_error_response_is_documented_as_a_problem_document(
    api: httpx.AsyncClient,
) -> None:
    document = (await api.get("/api/v1/openapi.json")).json()
    answered = await api.get("/api/v1/agents/nope")  # any error: they all share one shape
    assert answered.headers["content-type"] == "application/problem+json"
    wrong = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for code, response in operation["responses"].items():
                media = set(response.get("content") or {})
                if code[0] in "45" and media != {"application/problem+json"}:
                    wrong.append(f"{method.upper()} {path} {code}: {sorted(media)}")
    assert wrong == [], "\n".join(wrong)


async def test_every_route_documents_the_statuses_every_request_may_meet(
    api: httpx.AsyncClient,
) -> None:
    """A rate limit (429) and a busy database (503) can answer any authenticated route."""
    document = (await api.get("/api/v1/openapi.json")).json()
    missing = [
        f"{method.upper()} {path}: {code}"
        for path, operations in document["paths"].items()
        if path.startswith("/api/v1/") and path != "/api/v1/openapi.json"
        for method, operation in operations.items()
        for code in ("422", "429", "503")
        if code not in operation["responses"]
    ]
    assert missing == [], "\n".join(missing)


async def test_apply_documents_created_as_well_as_updated(api: httpx.AsyncClient) -> None:
    document = (await api.get("/api/v1/openapi.json")).json()
    apply = document["paths"]["/api/v1/apply"]["post"]["responses"]
    created = await api.post(
        "/api/v1/apply",
        json={"apiVersion": "clawfleet.dev/v1", "kind": "Tenant", "metadata": {"name": "t1"}},
    )
    assert created.status_code == 201, created.text
    assert {"200", "201"} <= set(apply)
