"""The served OpenAPI document says what the app really sends: errors as problem documents.

FastAPI files every response model under the route's own media type, ``application/json``,
but every error is answered as ``application/problem+json`` (``api/problems.py``). A client
generated from the document, or a fuzzer checking responses against it, would otherwise
reject every error. This module moves each error response's schema to the problem media type.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from clawfleet.api.problems import PROBLEM_JSON

JSON = "application/json"


def problems_as_problem_json(document: dict[str, Any]) -> dict[str, Any]:
    """In place, and idempotent: every 4xx/5xx JSON response is filed as a problem document."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content") or {}
                if status[0] in "45" and JSON in content:
                    content[PROBLEM_JSON] = content.pop(JSON)
    return document


def install_openapi(app: FastAPI) -> None:
    generate: Callable[[], dict[str, Any]] = app.openapi  # caches the document on the app

    def openapi() -> dict[str, Any]:
        return problems_as_problem_json(generate())

    app.openapi = openapi  # type: ignore[method-assign]
